// Package np is the named-pipe transport: it lets Samba's smbd hand the
// \PIPE\FssagentRpc named pipe of its SMB clients to our DCE/RPC runtime
// over Samba's external-pipe Unix socket.
//
//	SMB client ──SMB2 CREATE \pipe\FssagentRpc on IPC$──► smbd
//	                                                        │ connect()
//	                                                        ▼
//	        <socket dir>/np/fssagentrpc  (AF_UNIX stream, dir 0700, root)
//	                                                        │
//	  Listener.Serve ─accept─► handshake (one per connection, timeout):
//	     ◄─ named_pipe_auth_req  u32 BE length, "NPAM", level 4/5/7/8,
//	                             NDR32 LE: client/server addresses and the
//	                             SMB session_info (SIDs, privileges,
//	                             unix token, names)
//	     ─► named_pipe_auth_rep  same level, message mode, status 0
//	        Request.Session ─► rpc.Session (Caller.Session) and
//	                           ClientAddress = the SMB client's IP
//	                                                        │
//	  messageConn: each pipe message is u16 LE length + bytes, both ways;
//	               Read presents a byte stream, Write sends one message
//	               per DCE/RPC PDU
//	                                                        │
//	                                                        ▼
//	        rpc.Server.ServeConn(conn, ConnInfo{Transport: ncacn_np, ...})
//
// Anything in a request that does not decode exactly (unknown level, a
// count beyond the blob, trailing bytes, claims we do not decode, a client
// address that is not an IP) closes the connection without a reply: smbd
// then fails the pipe open, or, with Samba's on-demand helpers, falls back
// to Samba's own rpcd_fsrvp. See samba-np-proxy.md for why the socket path
// must also be kept from samba-dcerpcd, and Listener.Watch for noticing
// when it was not.
package np
