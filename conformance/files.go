package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hirochachacha/go-smb2"
	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/srvs/srvsvc/v3"
	msmb2 "github.com/oiweiwei/go-msrpc/smb2"
	"github.com/oiweiwei/go-msrpc/ssp"
	"github.com/oiweiwei/go-msrpc/ssp/credential"
	"github.com/oiweiwei/go-msrpc/ssp/gssapi"
)

// Files is SMB access to the server's shares, for the checks of what an
// exposed shadow copy looks like to an SMB client (§3.1.4.6, §3.1.4.7).
// Share names are bare ("share1", "share1@{GUID}"); every call connects
// the share anew, so that a share's current settings apply.
type Files interface {
	// ReadFile reads name in share.
	ReadFile(ctx context.Context, share, name string) ([]byte, error)
	// WriteFile creates or replaces name in share.
	WriteFile(ctx context.Context, share, name string, data []byte) error
	// Remove deletes name in share.
	Remove(ctx context.Context, share, name string) error
	// Connect checks that share can be connected (tree connect).
	Connect(ctx context.Context, share string) error
	// ShareNames lists the server's shares (NetShareEnum).
	ShareNames(ctx context.Context) ([]string, error)
	// ShareSD is the share's security descriptor (MS-SRVS
	// NetrShareGetInfo level 502), self-relative.
	ShareSD(ctx context.Context, share string) ([]byte, error)
	// Close ends the session.
	Close() error
}

// FilesDialer opens a Files session (Target.Files).
type FilesDialer func(ctx context.Context) (Files, error)

// SMBFiles is a FilesDialer for the SMB server at host:port (the server
// FSRVP exposes its shares on) as user/password (NTLM): go-smb2 for
// files and shares, go-msrpc's srvsvc client over \PIPE\srvsvc for the
// share security descriptor. timeout limits each operation (0: 30 s).
func SMBFiles(host string, port int, user, password string, timeout time.Duration) FilesDialer {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return func(ctx context.Context) (Files, error) {
		f := &smbFiles{host: host, port: port, user: user, password: password, timeout: timeout}
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var d net.Dialer
		nc, err := d.DialContext(dctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("smb: %w", err)
		}
		sd := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: user, Password: password}}
		f.s, err = sd.DialContext(dctx, nc)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("smb session as %s: %w", user, err)
		}
		return f, nil
	}
}

type smbFiles struct {
	host, user, password string
	port                 int
	timeout              time.Duration
	s                    *smb2.Session
}

func (f *smbFiles) mount(ctx context.Context, share string) (*smb2.Share, func(), error) {
	fs, err := f.s.WithContext(ctx).Mount(share)
	if err != nil {
		return nil, nil, fmt.Errorf("tree connect %s: %w", share, err)
	}
	return fs.WithContext(ctx), func() { fs.Umount() }, nil
}

func (f *smbFiles) ReadFile(ctx context.Context, share, name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	fs, done, err := f.mount(ctx, share)
	if err != nil {
		return nil, err
	}
	defer done()
	return fs.ReadFile(name)
}

func (f *smbFiles) WriteFile(ctx context.Context, share, name string, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	fs, done, err := f.mount(ctx, share)
	if err != nil {
		return err
	}
	defer done()
	return fs.WriteFile(name, data, 0o644)
}

func (f *smbFiles) Remove(ctx context.Context, share, name string) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	fs, done, err := f.mount(ctx, share)
	if err != nil {
		return err
	}
	defer done()
	return fs.Remove(name)
}

func (f *smbFiles) Connect(ctx context.Context, share string) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	_, done, err := f.mount(ctx, share)
	if err != nil {
		return err
	}
	done()
	return nil
}

func (f *smbFiles) ShareNames(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return f.s.WithContext(ctx).ListSharenames()
}

// ShareSD asks srvsvc (NetrShareGetInfo level 502) over its own ncacn_np
// connection.
func (f *smbFiles) ShareSD(ctx context.Context, share string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cred := credential.NewFromPassword(f.user, f.password)
	d := msmb2.NewDialer(msmb2.WithSecurity(gssapi.WithCredential(cred), gssapi.WithMechanismFactory(ssp.NTLM)))
	cc, err := dcerpc.Dial(ctx, NPBinding(f.host, "srvsvc"), dcerpc.WithSMBPort(f.port), dcerpc.WithSMBDialer(d), dcerpc.WithTimeout(f.timeout))
	if err != nil {
		return nil, fmt.Errorf("dial srvsvc: %w", err)
	}
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		cc.Close(cctx)
		ccancel()
		stop()
	}()
	cli, err := srvsvc.NewSrvsvcClient(life, cc, dcerpc.WithInsecure())
	if err != nil {
		return nil, fmt.Errorf("bind srvsvc: %w", err)
	}
	resp, err := cli.ShareGetInfo(ctx, &srvsvc.ShareGetInfoRequest{ServerName: f.host, NetName: share, Level: 502})
	if err != nil {
		return nil, fmt.Errorf("NetrShareGetInfo(%s, 502): %w", share, err)
	}
	if resp.Return != 0 {
		return nil, fmt.Errorf("NetrShareGetInfo(%s, 502): WERR 0x%08X", share, resp.Return)
	}
	v, ok := resp.Info.GetValue().(*srvsvc.ShareInfo502I)
	if !ok || v == nil {
		return nil, errors.New("NetrShareGetInfo: no SHARE_INFO_502 in the answer")
	}
	return v.SecurityDescriptor, nil
}

func (f *smbFiles) Close() error { return f.s.Logoff() }
