// Package server assembles fsrvpd: it builds the storage backend, the share
// exposer, the state store and the FSRVP service from a Config, serves them
// through the rpc runtime, and shuts everything down in order.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/client/writerctl"
	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/dcom"
	"github.com/fsrvpd/fsrvpd/rpc/epm"
	"github.com/fsrvpd/fsrvpd/rpc/np"
	"github.com/fsrvpd/fsrvpd/server/admin"
	"github.com/fsrvpd/fsrvpd/server/config"
	"github.com/fsrvpd/fsrvpd/server/fsrvp"
	"github.com/fsrvpd/fsrvpd/server/retention"
	"github.com/fsrvpd/fsrvpd/server/scmp"
	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/server/writers"
	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/registry"
	"github.com/fsrvpd/fsrvpd/shares/samba"
	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/btrfs"
	"github.com/fsrvpd/fsrvpd/storage/dir"
	"github.com/fsrvpd/fsrvpd/storage/zfs"

	fssagent "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
)

// Daemon is a running fsrvpd.
type Daemon struct {
	cfg     config.Config
	log     *logrus.Entry
	db      *state.DB
	service *fsrvp.Service
	writers *writers.Coordinator
	rpc     *rpc.Server
	epmSrv  *rpc.Server
	// dcom is the DCOM server of SCMP: its resolver runs on epmSrv, its
	// exporter on dcomSrv.
	dcom    *dcom.Server
	dcomSrv *rpc.Server
	scmp    *scmp.Model

	listeners []net.Listener
	// unixSocket is the socket file this daemon created, removed at close.
	unixSocket string
	pipe       *np.Listener
	stopWatch  context.CancelFunc
	wg         sync.WaitGroup
	errc       chan error

	tel         *telemetry
	admin       *admin.Server
	adminL      net.Listener
	adminSocket string
	metricsSrv  *http.Server
	metricsAddr net.Addr
	retention   *retention.Runner
	stopBg      context.CancelFunc
}

// Start builds and starts a daemon. The listeners are bound when Start
// returns; Wait blocks until the daemon stops.
func Start(ctx context.Context, cfg config.Config, log *logrus.Entry) (_ *Daemon, err error) {
	d := &Daemon{cfg: cfg, log: log, errc: make(chan error, 8)}
	defer func() {
		if err != nil {
			d.closeAll()
		}
	}()
	if err := os.MkdirAll(cfg.Server.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	backend, err := newBackend(cfg, log)
	if err != nil {
		return nil, err
	}
	exposer, resolver, err := newShares(ctx, cfg, log.WithField("component", "shares"))
	if err != nil {
		return nil, err
	}
	d.db, err = state.Open(filepath.Join(cfg.Server.StateDir, "fsrvpd.db"), 2*time.Second)
	if err != nil {
		return nil, err
	}
	sameVolume := fsrvp.SameVolumeShare
	if cfg.FSRVP.SameVolume == "reject" {
		sameVolume = fsrvp.SameVolumeReject
	}
	// The SCMP model prunes after every commit; it is built once the
	// service it lists exists.
	var model *scmp.Model
	committed := func(vols []string) {
		if model != nil {
			model.EnforceVolumeIDs(vols)
		}
	}
	compat := fsrvp.CompatSpec
	if cfg.FSRVP.Compat == "samba" {
		compat = fsrvp.CompatSamba
	}
	var ws fsrvp.Writers
	if len(cfg.Writer) > 0 {
		d.writers, err = writers.New(cfg.Writers, cfg.Writer, d.db, cfg.Server.StateDir, log)
		if err != nil {
			return nil, err
		}
		ws = d.writers
	}
	var svc *fsrvp.Service
	d.tel = newTelemetry(func() *fsrvp.Service { return svc }, backend)
	if d.writers != nil {
		d.writers.OnThaw = d.tel.writersThawed
	}
	d.service, err = fsrvp.New(fsrvp.Config{
		Writers:  ws,
		Observer: d.tel,
		Backend:  backend, Shares: resolver, Exposer: exposer, DB: d.db,
		Logger:       log.WithField("component", "fsrvp"),
		Access:       accessPolicy(cfg),
		ServerName:   cfg.Server.Name,
		ShortTimeout: cfg.FSRVP.SequenceTimeout.Duration,
		LongTimeout:  cfg.FSRVP.SequenceTimeout.Duration,
		RetryLimit:   cfg.FSRVP.RetryLimit,
		SameVolume:   sameVolume,
		Compat:       compat,
		Committed:    committed,
	})
	if err != nil {
		return nil, err
	}
	svc = d.service
	if _, err := d.service.Reconcile(ctx); err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	if err := d.startOps(); err != nil {
		return nil, err
	}

	auth, err := authProviders(cfg)
	if err != nil {
		return nil, err
	}
	d.rpc = &rpc.Server{Logger: log.WithField("component", "rpc"), Auth: auth}
	backupSIDs := append(slices.Clone(cfg.Samba.BackupSIDs), cfg.Auth.BackupSIDs...)
	fsrvp.Register(d.rpc, d.service, backupSIDs...)
	if d.writers != nil {
		authz := fsrvp.Handler{S: d.service, BackupSIDs: backupSIDs}.Authorized
		d.rpc.Register(writerctl.SyntaxV1_0, writerctl.NewServerHandle(writers.Control{C: d.writers, Authorize: authz}))
	}
	tcpPort := 0
	for _, addr := range cfg.Server.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		if tcpPort == 0 {
			tcpPort = l.Addr().(*net.TCPAddr).Port
		}
		d.serve(d.rpc, l, "ncacn_ip_tcp")
	}
	if p := cfg.Server.UnixSocket; p != "" {
		os.Remove(p)
		l, err := net.Listen("unix", p)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", p, err)
		}
		d.unixSocket = p
		d.serve(d.rpc, l, "ncalrpc")
	}
	if cfg.Samba.Enabled {
		if err := d.startPipe(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.SCMP.Enabled {
		lister, ok := resolver.(shares.Lister)
		if !ok {
			return nil, fmt.Errorf("scmp: the share source cannot list its shares")
		}
		d.scmp = scmp.New(scmp.Config{
			Backend: backend, Shares: lister, Inventory: d.service, DB: d.db, ServerName: cfg.Server.Name,
			MaxShadowCopies: cfg.SCMP.MaxShadowCopies, MinDiffArea: cfg.SCMP.MinStorageBytes,
			Logger: log.WithField("component", "scmp"),
		})
		if err := d.startDCOM(auth, backupSIDs); err != nil {
			return nil, err
		}
		model = d.scmp
	}
	if a := cfg.Server.EndpointMapper; a != "" && tcpPort != 0 {
		if err := d.startEPM(a, tcpPort); err != nil {
			if !cfg.Server.EndpointMapperOptional {
				return nil, err
			}
			log.WithError(err).Warn("endpoint mapper not started: clients must be given the port (rpcclient needs port 135)")
		}
	}
	authTypes := make([]uint8, 0, len(auth))
	for _, p := range auth {
		authTypes = append(authTypes, p.AuthType())
	}
	log.WithFields(logrus.Fields{"server_name": cfg.Server.Name, "backend": backend.Name(), "shares": len(cfg.Shares),
		"auth_types": authTypes, "accounts": len(cfg.Auth.Accounts), "min_auth_level": cfg.FSRVP.MinAuthLevel, "pipe_auth": cfg.FSRVP.PipeAuth}).Info("fsrvpd ready")
	return d, nil
}

// newShares picks where base shares come from and how snapshots are
// exposed: Samba's configuration and the running smbd, or the [[share]]
// list and a registry file (TCP-only mode).
func newShares(ctx context.Context, cfg config.Config, log *logrus.Entry) (shares.Exposer, shares.Resolver, error) {
	if cfg.Samba.Enabled {
		e, err := samba.New(ctx, samba.Config{SMBConf: cfg.Samba.SMBConf, IncludeFile: cfg.Samba.IncludeFile,
			PreviousVersionsDir: cfg.Samba.PreviousVersionsDir, RegistryMirror: cfg.Samba.RegistryMirror, Log: log})
		if err != nil {
			return nil, nil, fmt.Errorf("samba: %w", err)
		}
		return e, e.Resolver(), nil
	}
	reg, err := registry.Open(filepath.Join(cfg.Server.StateDir, "shares.json"), log)
	if err != nil {
		return nil, nil, fmt.Errorf("share registry: %w", err)
	}
	base := make([]shares.BaseShare, len(cfg.Shares))
	for i, s := range cfg.Shares {
		base[i] = shares.BaseShare{Name: s.Name, Path: s.Path}
	}
	res, err := shares.NewStatic(base)
	if err != nil {
		return nil, nil, err
	}
	return reg, res, nil
}

// startPipe serves \PIPE\FssagentRpc on Samba's external-pipe socket and
// watches that the socket stays ours (samba-dcerpcd replaces it when it
// starts with rpcd_fsrvp enabled).
func (d *Daemon) startPipe(ctx context.Context) error {
	if _, err := preparePipe(ctx, d.cfg.Samba.SMBConf, d.cfg.Samba.SocketDir, d.cfg.Samba.LibexecDir, d.log.WithField("component", "np")); err != nil {
		return err
	}
	path := d.cfg.PipeSocket()
	l, err := np.Listen(path, np.Options{Logger: d.log.WithField("component", "np")})
	if err != nil {
		return fmt.Errorf("named pipe %s: %w", path, err)
	}
	d.pipe = l
	wctx, cancel := context.WithCancel(context.Background())
	d.stopWatch = cancel
	go l.Watch(wctx, 10*time.Second)
	d.log.WithFields(logrus.Fields{"addr": path, "transport": "ncacn_np"}).Info("listening")
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := l.Serve(d.rpc); err != nil && !errors.Is(err, rpc.ErrServerClosed) {
			d.errc <- fmt.Errorf("serve %s: %w", path, err)
		}
	}()
	return nil
}

func newBackend(cfg config.Config, log *logrus.Entry) (storage.Backend, error) {
	switch cfg.Storage.Backend {
	case "dir":
		return dir.New(dir.Config{Volumes: cfg.Storage.Dir.Volumes, SnapshotDir: cfg.SnapshotDir(), Logger: log})
	case "btrfs":
		return btrfs.New(btrfs.Config{SnapshotDir: cfg.Storage.Btrfs.SnapshotDir, Recursive: cfg.Storage.Btrfs.Recursive, Logger: log})
	case "zfs":
		return zfs.New(zfs.Config{Datasets: cfg.Storage.ZFS.Datasets, CloneParent: cfg.Storage.ZFS.CloneParent, Recursive: cfg.Storage.ZFS.Recursive, Logger: log})
	default:
		return nil, fmt.Errorf("storage backend %q not available", cfg.Storage.Backend)
	}
}

func (d *Daemon) startEPM(addr string, port int) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("endpoint mapper %s: binding a port below 1024 needs root or CAP_NET_BIND_SERVICE: %w", addr, err)
		}
		return fmt.Errorf("endpoint mapper %s: %w", addr, err)
	}
	m := epm.New(epm.Entry{Syntax: fssagent.FileServerVSSAgentSyntaxV1_0, Annotation: "fsrvpd FSRVP", Port: port})
	// The mapper answers unauthenticated clients; the providers serve the
	// DCOM activator's authenticated binds on the same listener.
	d.epmSrv = &rpc.Server{Logger: d.log.WithField("component", "epm"), Auth: d.rpc.Auth}
	d.epmSrv.Register(epm.Syntax, m.Handle())
	if d.dcom != nil {
		// One listener for the mapper and the DCOM resolver/activator,
		// as on Windows (MS-DCOM §1.9, the digest's §10.1).
		d.dcom.RegisterResolver(d.epmSrv)
	}
	// The mapper is also served on the main port, as Windows does.
	d.rpc.Register(epm.Syntax, m.Handle())
	d.serve(d.epmSrv, l, "ncacn_ip_tcp")
	return nil
}

// Well-known SIDs SCMP also admits (MS-SCMP §7 <4>).
const (
	sidRestoreOperators = "S-1-5-32-549"
	sidSystem           = "S-1-5-18"
)

// startDCOM listens on the SCMP object exporter's address and serves the
// SCMP classes there; the resolver is added to the endpoint mapper's
// server by startEPM.
func (d *Daemon) startDCOM(auth []rpc.AuthProvider, backupSIDs []string) error {
	addr := d.cfg.SCMP.Exporter
	if addr == "" {
		host := "127.0.0.1"
		if len(d.cfg.Server.Listen) > 0 {
			host, _, _ = net.SplitHostPort(d.cfg.Server.Listen[0])
		}
		addr = net.JoinHostPort(host, "0")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("scmp exporter %s: %w", addr, err)
	}
	dc := dcom.Config{Logger: d.log.WithField("component", "dcom"), ExporterPort: l.Addr().(*net.TCPAddr).Port}
	if !d.cfg.SCMP.AllowUnauthenticated {
		// MS-SCMP §7 (<3>, <4>): packet privacy (or integrity if
		// configured), and Administrators, Backup Operators, Restore
		// Operators or SYSTEM.
		dc.AuthnHint = uint32(rpc.AuthLevelPrivacy)
		if d.cfg.SCMP.MinAuthLevel == "integrity" {
			dc.AuthnHint = uint32(rpc.AuthLevelIntegrity)
		}
		extra := append([]string{sidRestoreOperators, sidSystem}, backupSIDs...)
		dc.Authorize = func(c *rpc.Caller) bool { return c.Identity.IsBackupCapable(extra...) }
	}
	for _, p := range auth {
		switch p.AuthType() {
		case rpc.AuthTypeSPNEGO:
			dc.Security = append(dc.Security, dcom.SecurityBinding{AuthnSvc: dcom.AuthnNegotiate})
		case rpc.AuthTypeNTLM:
			dc.Security = append(dc.Security, dcom.SecurityBinding{AuthnSvc: dcom.AuthnWinNT})
		case rpc.AuthTypeKerberos:
			dc.Security = append(dc.Security, dcom.SecurityBinding{AuthnSvc: dcom.AuthnKerberos})
		}
	}
	d.dcom = dcom.New(dc)
	scmp.Register(d.dcom, d.scmp)
	d.dcomSrv = &rpc.Server{Logger: d.log.WithField("component", "dcom"), Auth: auth}
	d.dcom.RegisterExporter(d.dcomSrv)
	d.serve(d.dcomSrv, l, "ncacn_ip_tcp")
	return nil
}

func (d *Daemon) serve(s *rpc.Server, l net.Listener, transport string) {
	d.listeners = append(d.listeners, l)
	d.log.WithFields(logrus.Fields{"addr": l.Addr().String(), "transport": transport}).Info("listening")
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := s.Serve(l); err != nil && !errors.Is(err, rpc.ErrServerClosed) {
			d.errc <- fmt.Errorf("serve %s: %w", l.Addr(), err)
		}
	}()
}

// Addrs are the addresses the daemon listens on, FSRVP first.
func (d *Daemon) Addrs() []net.Addr {
	out := make([]net.Addr, len(d.listeners))
	for i, l := range d.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Run serves until ctx is cancelled or a listener fails, then shuts down:
// new connections stop, calls in flight finish (up to grace), and the state
// is closed. Nothing is deleted: the next start reconciles.
func (d *Daemon) Run(ctx context.Context, grace time.Duration) error {
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-d.errc:
	}
	d.log.Info("shutting down")
	d.stopOps()
	if d.pipe != nil {
		d.stopWatch()
		d.pipe.Close()
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, s := range []*rpc.Server{d.rpc, d.epmSrv, d.dcomSrv} {
		if s != nil {
			if err := s.Shutdown(sctx); err != nil {
				d.log.WithError(err).Warn("shutdown did not finish in time")
			}
		}
	}
	d.wg.Wait()
	d.closeAll()
	return runErr
}

func (d *Daemon) closeAll() {
	d.stopOps()
	if d.pipe != nil {
		d.stopWatch()
		d.pipe.Close()
	}
	for _, l := range d.listeners {
		l.Close()
	}
	if d.service != nil {
		d.service.Close()
		d.service = nil
	}
	if d.writers != nil {
		d.writers.Close()
		d.writers = nil
	}
	if d.db != nil {
		d.db.Close()
		d.db = nil
	}
	if d.unixSocket != "" {
		os.Remove(d.unixSocket)
	}
}
