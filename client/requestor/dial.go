package requestor

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/fsrvpd/fsrvpd/client"
)

// NewDialer returns the Dialer the requestor uses: a target of the form
// "ncacn_np:HOST[PIPE]" (PIPE optional, default FssagentRpc) is reached over
// SMB with smb's port and credentials (client.DialNP), as Windows does;
// anything else goes to client.Dial (ncacn_ip_tcp). opts (timeouts, RPC
// authentication, logger) apply to both.
func NewDialer(smb SMB, opts ...client.Option) Dialer {
	return func(ctx context.Context, target string) (*client.Client, error) {
		rest, ok := strings.CutPrefix(target, "ncacn_np:")
		if !ok {
			return client.Dial(ctx, target, opts...)
		}
		host, pipe := rest, ""
		if i := strings.IndexByte(rest, '['); i >= 0 && strings.HasSuffix(rest, "]") {
			host, pipe = rest[:i], rest[i+1:len(rest)-1]
			pipe = strings.TrimPrefix(strings.TrimPrefix(pipe, `\pipe\`), `\PIPE\`)
		}
		if host == "" {
			host = smb.host()
		}
		port := 445
		if _, p, err := net.SplitHostPort(smb.addr()); err == nil {
			if port, err = strconv.Atoi(p); err != nil {
				return nil, fmt.Errorf("SMB address %q: bad port", smb.Addr)
			}
		}
		user := smb.User
		if smb.Domain != "" {
			user = smb.Domain + `\` + user
		}
		return client.DialNP(ctx, client.NPTarget{Host: host, Port: port, Pipe: pipe, User: user, Password: smb.Password}, opts...)
	}
}
