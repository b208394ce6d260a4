package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// DefaultSocket is where the daemon listens with the default state_dir.
const DefaultSocket = "/var/lib/fsrvpd/admin.sock"

// Error is a refusal or failure reported by the daemon.
type Error struct {
	Code, Msg string
}

func (e *Error) Error() string { return e.Msg }

// Call sends req to the daemon's admin socket at path and returns its
// response; a response with OK false comes back as an *Error.
func Call(ctx context.Context, path string, req Request) (Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Response{}, fmt.Errorf("admin socket: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return Response{}, fmt.Errorf("admin socket: %w", err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, ctx.Err()
		}
		return Response{}, fmt.Errorf("admin socket: no answer: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("admin socket: bad answer: %w", err)
	}
	if !resp.OK {
		return resp, &Error{Code: resp.Code, Msg: resp.Error}
	}
	return resp, nil
}
