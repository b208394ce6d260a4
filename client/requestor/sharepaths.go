package requestor

import (
	"context"
	"fmt"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/srvs/srvsvc/v3"
	msmb2 "github.com/oiweiwei/go-msrpc/smb2"
	"github.com/oiweiwei/go-msrpc/ssp"
	"github.com/oiweiwei/go-msrpc/ssp/credential"
	"github.com/oiweiwei/go-msrpc/ssp/gssapi"
)

// SharePaths maps share names to their directories on the server, in the
// server's own form ("C:\srv\data" from Windows, "C:\srv\data" too from
// Samba, which prefixes its unix paths with C:). Writer metadata names
// files by server path; the requestor maps them to shares with this.
type SharePaths map[string]string

// sharePaths asks the server's Server Service for every disk share's path
// (NetrShareEnum, information level 2, MS-SRVS §3.1.4.8) over \PIPE\srvsvc.
// Level 2 needs administrative rights on the server.
func (s SMB) sharePaths(ctx context.Context) (SharePaths, error) {
	host, port, err := net.SplitHostPort(s.addr())
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	user := s.User
	if s.Domain != "" {
		user = s.Domain + `\` + user
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	cred := credential.NewFromPassword(user, s.Password)
	smb := msmb2.NewDialer(msmb2.WithSecurity(gssapi.WithCredential(cred), gssapi.WithMechanismFactory(ssp.NTLM)))
	cc, err := dcerpc.Dial(ctx, "ncacn_np:"+host+"[srvsvc]", dcerpc.WithSMBPort(p), dcerpc.WithSMBDialer(smb))
	if err != nil {
		return nil, fmt.Errorf("srvsvc: %w", err)
	}
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		cc.Close(context.Background())
		stop()
	}()
	cl, err := srvsvc.NewSrvsvcClient(life, cc, dcerpc.WithInsecure())
	if err != nil {
		return nil, fmt.Errorf("srvsvc: bind: %w", err)
	}
	resp, err := cl.ShareEnum(ctx, &srvsvc.ShareEnumRequest{
		ServerName: `\\` + strings.Trim(host, "[]"),
		Info: &srvsvc.ShareEnum{Level: 2, ShareInfo: &srvsvc.ShareEnumUnion{
			Value: &srvsvc.ShareEnumUnion_Level2{Level2: &srvsvc.ShareInfo2Container{}}}},
		PreferredMaximumLength: 0xFFFFFFFF,
	})
	if err != nil {
		return nil, fmt.Errorf("srvsvc: NetrShareEnum level 2: %w", err)
	}
	out := SharePaths{}
	if resp.Info != nil && resp.Info.ShareInfo != nil {
		if l2, ok := resp.Info.ShareInfo.Value.(*srvsvc.ShareEnumUnion_Level2); ok && l2.Level2 != nil {
			for _, si := range l2.Level2.Buffer {
				if si != nil && si.Type&0xff == 0 && si.Path != "" { // STYPE_DISKTREE
					out[si.NetworkName] = si.Path
				}
			}
		}
	}
	return out, nil
}

// normServerPath turns a server path into a comparable slash path without
// a drive letter: `C:\srv\data\` and "/srv/data" both give "/srv/data".
func normServerPath(p string) string {
	p = strings.ReplaceAll(p, `\`, "/")
	if len(p) >= 2 && p[1] == ':' {
		p = p[2:]
	}
	p = path.Clean("/" + p)
	return p
}

// locate maps a server path to a share and a path below it (slash form,
// "" for the share root): the share whose directory is the longest prefix
// of p. Only shares in names (if not empty) are considered.
func (sp SharePaths) locate(p string, names map[string]bool) (share, rel string, ok bool) {
	np := normServerPath(p)
	best := -1
	keys := make([]string, 0, len(sp))
	for k := range sp {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic among equal paths
	for _, name := range keys {
		if len(names) > 0 && !names[strings.ToLower(name)] {
			continue
		}
		root := normServerPath(sp[name])
		var r string
		switch {
		case np == root:
		case root == "/" && strings.HasPrefix(np, "/"):
			r = np[1:]
		case strings.HasPrefix(np, root+"/"):
			r = np[len(root)+1:]
		default:
			continue
		}
		if len(root) > best {
			best, share, rel, ok = len(root), name, r, true
		}
	}
	return share, rel, ok
}
