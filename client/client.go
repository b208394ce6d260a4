package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/dcerpc"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/oiweiwei/go-msrpc/ssp/gssapi"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/rpc/msdtyp"
)

// DefaultTimeout is the default limit for one RPC call, the value the Windows
// client uses for every FSRVP call (MS-FSRVP §3.2.2).
const DefaultTimeout = 180 * time.Second

// ShareMappingLevel1 is the only GetShareMapping information level.
const ShareMappingLevel1 uint32 = 1

// Option configures Dial and New.
type Option func(*config)

type config struct {
	timeout   time.Duration
	ndr64     bool
	log       *logrus.Entry
	epm       string
	shareHost string
	rpcOpts   []dcerpc.Option
	auth      *Auth
}

func newConfig(opts []Option) *config {
	cfg := &config{timeout: DefaultTimeout}
	for _, o := range opts {
		o(cfg)
	}
	if cfg.log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.log = logrus.NewEntry(l)
	}
	return cfg
}

// WithTimeout limits every RPC call (and the dial) to d. Default: DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithNDR64 offers the NDR64 transfer syntax when binding instead of NDR 2.0.
func WithNDR64() Option { return func(c *config) { c.ndr64 = true } }

// WithLogger sends debug logs (one line per call) to l. Default: discarded.
func WithLogger(l *logrus.Entry) Option { return func(c *config) { c.log = l } }

// WithEndpointMapper sets the endpoint mapper used when the target has no
// port: "host:port", "host" (port 135) or a bare port (on the target's host).
// Default: the target host, port 135.
func WithEndpointMapper(addr string) Option { return func(c *config) { c.epm = addr } }

// WithShareHost sets the host used to expand bare share names into UNC names
// (see ResolveShare). Dial defaults it to the target's host.
func WithShareHost(host string) Option { return func(c *config) { c.shareHost = host } }

// WithRPCOptions passes extra go-msrpc options to the bind. This is the seam
// for authentication: when opts contain a dcerpc.SecurityOption or
// dcerpc.SecurityContextOption (dcerpc.WithSeal, dcerpc.WithCredentials,
// dcerpc.WithMechanism, ...) they replace the default dcerpc.WithInsecure.
func WithRPCOptions(opts ...dcerpc.Option) Option {
	return func(c *config) { c.rpcOpts = append(c.rpcOpts, opts...) }
}

func (cfg *config) bindOptions() ([]dcerpc.Option, error) {
	var out []dcerpc.Option
	if cfg.auth != nil {
		a, err := cfg.auth.rpcOptions()
		if err != nil {
			return nil, err
		}
		out = append(out, a...)
	}
	secure := cfg.auth != nil
	for _, o := range cfg.rpcOpts {
		switch o.(type) {
		case dcerpc.SecurityOption, dcerpc.SecurityContextOption:
			secure = true
		}
	}
	if !secure {
		// No WithAuth: an unauthenticated bind (FSRVP servers may answer
		// E_ACCESSDENIED to it).
		out = append(out, dcerpc.WithInsecure())
	}
	out = append(out, cfg.rpcOpts...)
	if cfg.ndr64 {
		out = append(out, dcerpc.WithNDR64())
	}
	// go-msrpc logs through zerolog; its zero-value logger (the default we
	// leave in place) is disabled, so nothing reaches stderr.
	return out, nil
}

// Client is an FSRVP client over one DCE/RPC connection. Calls are meant to
// be made one at a time.
type Client struct {
	rpc       fsrvp.FileServerVSSAgentClient
	conn      dcerpc.Conn // nil for New
	stop      context.CancelFunc
	timeout   time.Duration
	log       *logrus.Entry
	shareHost string
}

// New wraps an already bound go-msrpc FSRVP client (for example one running
// over a named pipe, or a test double). Close does not close its connection.
func New(rpc fsrvp.FileServerVSSAgentClient, opts ...Option) *Client {
	cfg := newConfig(opts)
	return &Client{rpc: rpc, timeout: cfg.timeout, log: cfg.log, shareHost: cfg.shareHost}
}

// Dial connects to the FSRVP server at target (see ParseTarget for the
// accepted forms) and binds the FileServerVssAgent interface, version 1.0.
// Errors are *TransportError, or plain errors for an unparsable target.
func Dial(ctx context.Context, target string, opts ...Option) (*Client, error) {
	cfg := newConfig(opts)
	t, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	bindOpts, err := cfg.bindOptions()
	if err != nil {
		return nil, err
	}
	if cfg.shareHost == "" {
		cfg.shareHost = t.Host
	}
	log := cfg.log.WithField("server", t.String())

	dctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	dialOpts := []dcerpc.Option{
		dcerpc.WithTimeout(cfg.timeout), // go-msrpc's per-read network timeout (default 10 s)
		dcerpc.WithDialer(&net.Dialer{Timeout: cfg.timeout}),
		dcerpc.WithNewTransport(),
	}
	if t.Port == "" {
		addr, err := epmAddr(t.Host, cfg.epm)
		if err != nil {
			return nil, err
		}
		dialOpts = append(dialOpts, dcerpc.WithEndpointMapper(&endpointMapper{
			addr: addr,
			host: t.Host,
			opts: []dcerpc.Option{dcerpc.WithTimeout(cfg.timeout), dcerpc.WithDialer(&net.Dialer{Timeout: cfg.timeout})},
			log:  log,
			dialCtx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, cfg.timeout)
			},
		}))
	}

	log.WithField("binding", t.Binding()).Debug("dialing")
	cc, err := dcerpc.Dial(dctx, t.Binding(), dialOpts...)
	if err != nil {
		return nil, &TransportError{Op: "dial", Err: err}
	}

	rpc, stop, err := bindFSRVP(ctx, dctx, cc, cfg.auth != nil, bindOpts)
	if err != nil {
		return nil, &TransportError{Op: "dial", Err: fmt.Errorf("%s: %w", t, err)}
	}
	log.Debug("bound FileServerVssAgent v1.0")
	return &Client{rpc: rpc, conn: cc, stop: stop, timeout: cfg.timeout, log: log, shareHost: cfg.shareHost}, nil
}

// bindFSRVP binds FileServerVssAgent v1.0 on cc, giving up when dctx ends
// (closing cc). go-msrpc ties the connection's reader and writer goroutines
// to the context given to Bind, so the bind gets a context that lives until
// stop is called (by Close), derived from ctx without its cancellation;
// with authentication it is a security context of its own, so that the
// credentials stay out of go-msrpc's global store.
func bindFSRVP(ctx, dctx context.Context, cc dcerpc.Conn, authenticated bool, bindOpts []dcerpc.Option) (fsrvp.FileServerVSSAgentClient, context.CancelFunc, error) {
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	if authenticated {
		life = gssapi.NewSecurityContext(life)
	}
	type bound struct {
		rpc fsrvp.FileServerVSSAgentClient
		err error
	}
	ch := make(chan bound, 1)
	go func() {
		rpc, err := fsrvp.NewFileServerVSSAgentClient(life, cc, bindOpts...)
		ch <- bound{rpc, err}
	}()
	var b bound
	select {
	case b = <-ch:
	case <-dctx.Done():
		b.err = dctx.Err()
	}
	if b.err != nil {
		stop()
		_ = cc.Close(context.Background())
		return nil, nil, b.err
	}
	return b.rpc, stop, nil
}

// Close closes the connection opened by Dial.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.conn.Close(ctx)
	c.stop()
	c.conn = nil
	return err
}

// ShareHost returns the host used to expand bare share names.
func (c *Client) ShareHost() string { return c.shareHost }

// ResolveShare expands a bare share name to `\\<share host>\name\`; UNC
// names are returned unchanged (see the package function ResolveShare).
func (c *Client) ResolveShare(share string) string { return ResolveShare(c.shareHost, share) }

// invoke runs one FSRVP call with the per-call timeout and turns its outcome
// into nil, *HResultError or *TransportError.
func invoke[R any](c *Client, ctx context.Context, op string, call func(context.Context) (*R, error), ret func(*R) uint32) (*R, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	resp, err := call(ctx)
	log := c.log.WithField("op", op).WithField("took", time.Since(start).Round(time.Microsecond))
	switch {
	case resp != nil && ret(resp) != 0:
		herr := &HResultError{Op: op, Code: ret(resp)}
		log.WithField("result", herr.Error()).Debug("call failed")
		return resp, herr
	case err != nil:
		log.WithError(err).Debug("call failed")
		return nil, &TransportError{Op: op, Err: err}
	case resp == nil:
		return nil, &TransportError{Op: op, Err: errors.New("no response")}
	}
	log.Debug("call ok")
	return resp, nil
}

func millis(d time.Duration) uint32 {
	ms := d.Milliseconds()
	switch {
	case ms < 0:
		return 0
	case ms > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(ms)
}

// GetSupportedVersion (opnum 0) returns the server's FSRVP version range.
func (c *Client) GetSupportedVersion(ctx context.Context) (min, max uint32, err error) {
	resp, err := invoke(c, ctx, "GetSupportedVersion", func(ctx context.Context) (*fsrvp.GetSupportedVersionResponse, error) {
		return c.rpc.GetSupportedVersion(ctx, &fsrvp.GetSupportedVersionRequest{})
	}, func(r *fsrvp.GetSupportedVersionResponse) uint32 { return r.Return })
	if err != nil {
		return 0, 0, err
	}
	return resp.MinVersion, resp.MaxVersion, nil
}

// SetContext (opnum 1) sets the context for the next shadow copy set; see
// the Ctx* and Attr* constants and ParseContext.
func (c *Client) SetContext(ctx context.Context, shadowCopyContext uint32) error {
	_, err := invoke(c, ctx, "SetContext", func(ctx context.Context) (*fsrvp.SetContextResponse, error) {
		return c.rpc.SetContext(ctx, &fsrvp.SetContextRequest{Context: shadowCopyContext})
	}, func(r *fsrvp.SetContextResponse) uint32 { return r.Return })
	return err
}

// StartShadowCopySet (opnum 2) starts a shadow copy set and returns the
// server's id for it. clientSetID is the caller's id for the set (Windows
// servers reject uuid.Nil); it is sent as given.
func (c *Client) StartShadowCopySet(ctx context.Context, clientSetID uuid.UUID) (uuid.UUID, error) {
	resp, err := invoke(c, ctx, "StartShadowCopySet", func(ctx context.Context) (*fsrvp.StartShadowCopySetResponse, error) {
		return c.rpc.StartShadowCopySet(ctx, &fsrvp.StartShadowCopySetRequest{ClientShadowCopySetID: msdtyp.GUID(clientSetID)})
	}, func(r *fsrvp.StartShadowCopySetResponse) uint32 { return r.Return })
	if err != nil {
		return uuid.Nil, err
	}
	return msdtyp.UUID(resp.ShadowCopySetID), nil
}

// AddToShadowCopySet (opnum 3) adds the share shareUNC to the set and returns
// the server's shadow copy id. clientSCID is ignored by Windows servers.
func (c *Client) AddToShadowCopySet(ctx context.Context, clientSCID, setID uuid.UUID, shareUNC string) (uuid.UUID, error) {
	resp, err := invoke(c, ctx, "AddToShadowCopySet", func(ctx context.Context) (*fsrvp.AddToShadowCopySetResponse, error) {
		req := &fsrvp.AddToShadowCopySetRequest{ClientShadowCopyID: msdtyp.GUID(clientSCID), ShadowCopySetID: msdtyp.GUID(setID), ShareName: shareUNC}
		return wireCall(c, ctx, 3, "AddToShadowCopySet", req, writeArgs(clientSCID, setID, shareUNC), c.rpc.AddToShadowCopySet)
	}, func(r *fsrvp.AddToShadowCopySetResponse) uint32 { return r.Return })
	if err != nil {
		return uuid.Nil, err
	}
	return msdtyp.UUID(resp.ShadowCopyID), nil
}

// PrepareShadowCopySet (opnum 12) prepares the set's shadow copies; the
// server waits at most timeout (sent in milliseconds).
func (c *Client) PrepareShadowCopySet(ctx context.Context, setID uuid.UUID, timeout time.Duration) error {
	_, err := invoke(c, ctx, "PrepareShadowCopySet", func(ctx context.Context) (*fsrvp.PrepareShadowCopySetResponse, error) {
		return c.rpc.PrepareShadowCopySet(ctx, &fsrvp.PrepareShadowCopySetRequest{ShadowCopySetID: msdtyp.GUID(setID), TimeoutInMilliseconds: millis(timeout)})
	}, func(r *fsrvp.PrepareShadowCopySetResponse) uint32 { return r.Return })
	return err
}

// CommitShadowCopySet (opnum 4) takes the shadow copies of the set.
func (c *Client) CommitShadowCopySet(ctx context.Context, setID uuid.UUID, timeout time.Duration) error {
	_, err := invoke(c, ctx, "CommitShadowCopySet", func(ctx context.Context) (*fsrvp.CommitShadowCopySetResponse, error) {
		return c.rpc.CommitShadowCopySet(ctx, &fsrvp.CommitShadowCopySetRequest{ShadowCopySetID: msdtyp.GUID(setID), TimeoutInMilliseconds: millis(timeout)})
	}, func(r *fsrvp.CommitShadowCopySetResponse) uint32 { return r.Return })
	return err
}

// ExposeShadowCopySet (opnum 5) exposes the set's shadow copies as shares.
func (c *Client) ExposeShadowCopySet(ctx context.Context, setID uuid.UUID, timeout time.Duration) error {
	_, err := invoke(c, ctx, "ExposeShadowCopySet", func(ctx context.Context) (*fsrvp.ExposeShadowCopySetResponse, error) {
		return c.rpc.ExposeShadowCopySet(ctx, &fsrvp.ExposeShadowCopySetRequest{ShadowCopySetID: msdtyp.GUID(setID), TimeoutInMilliseconds: millis(timeout)})
	}, func(r *fsrvp.ExposeShadowCopySetResponse) uint32 { return r.Return })
	return err
}

// RecoveryCompleteShadowCopySet (opnum 6) ends the creation sequence: the
// set becomes Recovered (read-only for good) and is no longer subject to the
// server's 180-second message sequence timer.
func (c *Client) RecoveryCompleteShadowCopySet(ctx context.Context, setID uuid.UUID) error {
	_, err := invoke(c, ctx, "RecoveryCompleteShadowCopySet", func(ctx context.Context) (*fsrvp.RecoveryCompleteShadowCopySetResponse, error) {
		return c.rpc.RecoveryCompleteShadowCopySet(ctx, &fsrvp.RecoveryCompleteShadowCopySetRequest{ShadowCopySetID: msdtyp.GUID(setID)})
	}, func(r *fsrvp.RecoveryCompleteShadowCopySetResponse) uint32 { return r.Return })
	return err
}

// AbortShadowCopySet (opnum 7) deletes the set and its shadow copies.
func (c *Client) AbortShadowCopySet(ctx context.Context, setID uuid.UUID) error {
	_, err := invoke(c, ctx, "AbortShadowCopySet", func(ctx context.Context) (*fsrvp.AbortShadowCopySetResponse, error) {
		return c.rpc.AbortShadowCopySet(ctx, &fsrvp.AbortShadowCopySetRequest{ShadowCopySetID: msdtyp.GUID(setID)})
	}, func(r *fsrvp.AbortShadowCopySetResponse) uint32 { return r.Return })
	return err
}

// IsPathSupported (opnum 8) reports whether the server can shadow copy the
// share, and which machine owns it (the client should talk to that one).
func (c *Client) IsPathSupported(ctx context.Context, shareUNC string) (supported bool, owner string, err error) {
	resp, err := invoke(c, ctx, "IsPathSupported", func(ctx context.Context) (*fsrvp.IsPathSupportedResponse, error) {
		req := &fsrvp.IsPathSupportedRequest{ShareName: shareUNC}
		return wireCall(c, ctx, 8, "IsPathSupported", req, writeArgs(shareUNC), c.rpc.IsPathSupported)
	}, func(r *fsrvp.IsPathSupportedResponse) uint32 { return r.Return })
	if err != nil {
		return false, "", err
	}
	return resp.SupportedByThisProvider, resp.OwnerMachineName, nil
}

// ShadowCopyCompatibility bits returned by IsPathShadowCopied.
const (
	CompatDisableDefrag       int32 = 0x00000001
	CompatDisableContentIndex int32 = 0x00000002
)

// IsPathShadowCopied (opnum 9) reports whether a shadow copy of the share's
// file store exists, and its compatibility bits (Compat* constants).
func (c *Client) IsPathShadowCopied(ctx context.Context, shareUNC string) (present bool, compat int32, err error) {
	resp, err := invoke(c, ctx, "IsPathShadowCopied", func(ctx context.Context) (*fsrvp.IsPathShadowCopiedResponse, error) {
		req := &fsrvp.IsPathShadowCopiedRequest{ShareName: shareUNC}
		return wireCall(c, ctx, 9, "IsPathShadowCopied", req, writeArgs(shareUNC), c.rpc.IsPathShadowCopied)
	}, func(r *fsrvp.IsPathShadowCopiedResponse) uint32 { return r.Return })
	if err != nil {
		return false, 0, err
	}
	return resp.ShadowCopyPresent, resp.ShadowCopyCompatibility, nil
}

// Mapping is an FSSAGENT_SHARE_MAPPING_1: one share of a shadow copy set and
// the share that exposes its shadow copy.
type Mapping struct {
	ShadowCopySetID uuid.UUID `json:"shadow_copy_set_id"`
	ShadowCopyID    uuid.UUID `json:"shadow_copy_id"`
	ShareUNC        string    `json:"share"`        // base share, as the client sent it
	ExposedName     string    `json:"exposed_name"` // e.g. \\host\share@{<ShadowCopyID>}; "" if not exposed
	CreationTime    time.Time `json:"creation_time"`
}

// GetShareMapping (opnum 10) returns the mapping of shareUNC in the set.
// level must be ShareMappingLevel1 for a useful answer; other values are sent
// as given (servers answer E_INVALIDARG).
func (c *Client) GetShareMapping(ctx context.Context, scID, setID uuid.UUID, shareUNC string, level uint32) (Mapping, error) {
	resp, err := invoke(c, ctx, "GetShareMapping", func(ctx context.Context) (*fsrvp.GetShareMappingResponse, error) {
		req := &fsrvp.GetShareMappingRequest{ShadowCopyID: msdtyp.GUID(scID), ShadowCopySetID: msdtyp.GUID(setID), ShareName: shareUNC, Level: level}
		return wireCall(c, ctx, 10, "GetShareMapping", req, writeArgs(scID, setID, shareUNC, level), c.rpc.GetShareMapping)
	}, func(r *fsrvp.GetShareMappingResponse) uint32 { return r.Return })
	if err != nil {
		return Mapping{}, err
	}
	m1, _ := resp.ShareMapping.GetValue().(*fsrvp.ShareMapping1)
	if m1 == nil {
		return Mapping{}, fmt.Errorf("GetShareMapping: server returned success without a level-1 mapping")
	}
	return Mapping{
		ShadowCopySetID: msdtyp.UUID(m1.ShadowCopySetID),
		ShadowCopyID:    msdtyp.UUID(m1.ShadowCopyID),
		ShareUNC:        m1.ShareNameUNC,
		ExposedName:     m1.ShadowCopyShareName,
		CreationTime:    FiletimeToTime(m1.CreationTimestamp),
	}, nil
}

// DeleteShareMapping (opnum 11) removes the exposed share of shareUNC in the
// set; the server deletes the shadow copy (and the set) with its last mapping.
func (c *Client) DeleteShareMapping(ctx context.Context, setID, scID uuid.UUID, shareUNC string) error {
	_, err := invoke(c, ctx, "DeleteShareMapping", func(ctx context.Context) (*fsrvp.DeleteShareMappingResponse, error) {
		req := &fsrvp.DeleteShareMappingRequest{ShadowCopySetID: msdtyp.GUID(setID), ShadowCopyID: msdtyp.GUID(scID), ShareName: shareUNC}
		return wireCall(c, ctx, 11, "DeleteShareMapping", req, writeArgs(setID, scID, shareUNC), c.rpc.DeleteShareMapping)
	}, func(r *fsrvp.DeleteShareMappingResponse) uint32 { return r.Return })
	return err
}
