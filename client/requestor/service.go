package requestor

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/vss"
	"github.com/fsrvpd/fsrvpd/client/writerctl"
)

// WriterControl runs writers' service hooks on an fsrvpd server through
// its private writer-control interface (client/writerctl), which fsrvpd
// serves beside FSRVP on the same endpoints and authorizes like FSRVP (an
// administrator or backup operator). It implements ServiceControl.
type WriterControl struct {
	// Target is the server as for NewDialer: "ncacn_np:HOST[PIPE]" (through
	// the SMB server in SMB) or "host:port" (ncacn_ip_tcp, port required).
	Target string
	SMB    SMB
	// Options are the client options of the FSRVP connection
	// (authentication, timeouts).
	Options []client.Option
}

// StopService runs the writer's service-stop hook and waits for it.
func (w *WriterControl) StopService(ctx context.Context, id vss.Identification, service string) error {
	return w.run(ctx, id, writerctl.ServiceStop)
}

// StartService runs the writer's service-start hook and waits for it.
func (w *WriterControl) StartService(ctx context.Context, id vss.Identification, service string) error {
	return w.run(ctx, id, writerctl.ServiceStart)
}

func (w *WriterControl) run(ctx context.Context, id vss.Identification, action uint32) error {
	raw, err := w.dial(ctx)
	if err != nil {
		return err
	}
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		raw.Conn.Close(context.Background())
		stop()
	}()
	c, err := writerctl.New(life, raw.Conn, raw.BindOptions...)
	if err != nil {
		return fmt.Errorf("writer control: bind: %w", err)
	}
	// The instance id names this very writer instance.
	return c.RunWriterService(ctx, id.InstanceID, action)
}

func (w *WriterControl) dial(ctx context.Context) (*client.RawConn, error) {
	rest, ok := strings.CutPrefix(w.Target, "ncacn_np:")
	if !ok {
		return client.DialRaw(ctx, w.Target, w.Options...)
	}
	host, pipe := rest, ""
	if i := strings.IndexByte(rest, '['); i >= 0 && strings.HasSuffix(rest, "]") {
		host, pipe = rest[:i], rest[i+1:len(rest)-1]
	}
	if host == "" {
		host = w.SMB.host()
	}
	port := 445
	if _, p, err := net.SplitHostPort(w.SMB.addr()); err == nil {
		port, _ = strconv.Atoi(p)
	}
	user := w.SMB.User
	if w.SMB.Domain != "" {
		user = w.SMB.Domain + `\` + user
	}
	return client.DialRawNP(ctx, client.NPTarget{Host: host, Port: port, Pipe: pipe, User: user, Password: w.SMB.Password}, w.Options...)
}
