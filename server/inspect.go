package server

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/server/config"
	"github.com/fsrvpd/fsrvpd/storage"
)

// PipeInfo is what smb.conf says about \PIPE\FssagentRpc, as the daemon
// reads it at start: where smbd looks for the pipe socket and whether it
// starts samba-dcerpcd on demand.
type PipeInfo struct {
	// SmbdSocketDir is where smbd connects pipes: external_rpc_pipe:socket_dir
	// if set, else the ncalrpc dir.
	SmbdSocketDir string
	// NcalrpcDir is Samba's "ncalrpc dir", where samba-dcerpcd binds.
	NcalrpcDir string
	// OnDemandHelpers is "rpc start on demand helpers".
	OnDemandHelpers bool
}

// InspectPipe reads smb.conf through testparm (an error means testparm
// failed) and says which arrangement of PipeRedirect, PipeDiverted and
// PipeNoHelpers keeps Samba's rpcd_fsrvp off fsrvpd's socket; modeErr
// explains, with the fix, why none does. fsrvpd doctor reports the same
// verdict the daemon acts on at start.
func InspectPipe(ctx context.Context, cfg config.Config) (info PipeInfo, mode string, modeErr, err error) {
	g, err := readSambaGlobals(ctx, cfg.Samba.SMBConf)
	if err != nil {
		return PipeInfo{}, "", nil, err
	}
	info = PipeInfo{SmbdSocketDir: g.socketDir(), NcalrpcDir: g.ncalrpcDir, OnDemandHelpers: g.onDemandHelpers}
	mode, modeErr = choosePipeMode(g, cfg.Samba.SocketDir, cfg.Samba.LibexecDir)
	return info, mode, modeErr, nil
}

// NewBackend builds the storage backend the configuration names, as the
// daemon does.
func NewBackend(cfg config.Config, log *logrus.Entry) (storage.Backend, error) {
	return newBackend(cfg, log)
}
