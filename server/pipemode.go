package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"
)

// Ways of keeping Samba's own rpcd_fsrvp off \PIPE\FssagentRpc
// (research/samba-np-proxy.md §2). samba-dcerpcd unlinks and re-binds
// <socket dir>/np/fssagentrpc whenever it starts with rpcd_fsrvp, so one of
// them must hold or Samba's agent answers instead of fsrvpd.
const (
	// PipeRedirect: smb.conf sets external_rpc_pipe:socket_dir to our own
	// directory; every other pipe is a symlink into Samba's ncalrpc dir,
	// regenerated at each start. Samba's files stay untouched.
	PipeRedirect = "redirect"
	// PipeDiverted: rpcd_fsrvp is not in Samba's libexec dir (dpkg-divert
	// by our package), so samba-dcerpcd never serves the pipe.
	PipeDiverted = "diverted"
	// PipeNoHelpers: rpc start on demand helpers = no; samba-dcerpcd is not
	// started by smbd (other pipes need a standalone samba-dcerpcd).
	PipeNoHelpers = "no-helpers"
)

// sambaGlobals are the smb.conf settings that decide where smbd looks for
// the pipe's socket.
type sambaGlobals struct {
	ncalrpcDir, externalDir string
	onDemandHelpers         bool
}

// readSambaGlobals asks testparm for the effective settings.
func readSambaGlobals(ctx context.Context, smbConf string) (sambaGlobals, error) {
	out, err := exec.CommandContext(ctx, "testparm", "-s", "-v", smbConf).Output()
	if err != nil {
		return sambaGlobals{}, fmt.Errorf("testparm %s: %w", smbConf, err)
	}
	g := sambaGlobals{ncalrpcDir: "/run/samba/ncalrpc", onDemandHelpers: true}
	inGlobal := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			inGlobal = strings.EqualFold(line, "[global]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !inGlobal || !ok {
			continue
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "ncalrpc dir":
			g.ncalrpcDir = v
		case "external_rpc_pipe:socket_dir":
			g.externalDir = v
		case "rpc start on demand helpers":
			g.onDemandHelpers = !strings.EqualFold(v, "no") && !strings.EqualFold(v, "false")
		}
	}
	return g, nil
}

// socketDir is where smbd looks for pipe sockets.
func (g sambaGlobals) socketDir() string {
	if g.externalDir != "" {
		return g.externalDir
	}
	return g.ncalrpcDir
}

// choosePipeMode checks that smbd will connect \PIPE\FssagentRpc to our
// socket and that samba-dcerpcd cannot take it, and says which of the
// documented arrangements holds. It fails, with what to put in smb.conf,
// when none does.
func choosePipeMode(g sambaGlobals, socketDir, libexec string) (string, error) {
	if filepath.Clean(g.socketDir()) != filepath.Clean(socketDir) {
		return "", fmt.Errorf("smbd looks for pipes in %s but fsrvpd listens in %s: set [samba] socket_dir = %q, or in smb.conf [global]: external_rpc_pipe:socket_dir = %s",
			g.socketDir(), socketDir, g.socketDir(), socketDir)
	}
	if filepath.Clean(socketDir) != filepath.Clean(g.ncalrpcDir) {
		return PipeRedirect, nil
	}
	if _, err := os.Stat(filepath.Join(libexec, "rpcd_fsrvp")); errors.Is(err, os.ErrNotExist) {
		return PipeDiverted, nil
	}
	if !g.onDemandHelpers {
		return PipeNoHelpers, nil
	}
	return "", fmt.Errorf("samba-dcerpcd would replace fsrvpd's socket %s/np/fssagentrpc with Samba's rpcd_fsrvp: "+
		"either redirect smbd (smb.conf [global]: external_rpc_pipe:socket_dir = /run/fsrvpd, and [samba] socket_dir = \"/run/fsrvpd\"), "+
		"or divert Samba's agent: dpkg-divert --package fsrvpd --divert /usr/lib/fsrvpd/rpcd_fsrvp.samba --rename %s/rpcd_fsrvp", socketDir, libexec)
}

// otherPipes lists the named pipes Samba's rpcd helpers serve, except
// FSRVP's, from `rpcd_* --list-interfaces`.
func otherPipes(ctx context.Context, libexec string) ([]string, error) {
	helpers, err := filepath.Glob(filepath.Join(libexec, "rpcd_*"))
	if err != nil {
		return nil, err
	}
	var pipes []string
	for _, h := range helpers {
		out, err := exec.CommandContext(ctx, h, "--list-interfaces").Output()
		if err != nil {
			continue // Samba ignores a helper that cannot list, so do we
		}
		for _, line := range strings.Split(string(out), "\n") {
			line = strings.TrimSpace(line)
			name, ok := strings.CutPrefix(line, `ncacn_np:[\pipe\`)
			if !ok {
				continue
			}
			name = strings.ToLower(strings.TrimSuffix(name, "]"))
			if name != "fssagentrpc" && !strings.ContainsAny(name, `/\.`) && !slices.Contains(pipes, name) {
				pipes = append(pipes, name)
			}
		}
	}
	slices.Sort(pipes)
	return pipes, nil
}

// linkOtherPipes makes <socketDir>/np/<pipe> a symlink to Samba's socket
// for every pipe but ours, replacing symlinks left from an earlier start and
// leaving anything that is not a symlink alone.
func linkOtherPipes(socketDir, ncalrpcDir string, pipes []string, log *logrus.Entry) error {
	npDir := filepath.Join(socketDir, "np")
	if err := os.MkdirAll(npDir, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(npDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Type()&os.ModeSymlink != 0 && !slices.Contains(pipes, e.Name()) {
			os.Remove(filepath.Join(npDir, e.Name()))
		}
	}
	for _, p := range pipes {
		link, target := filepath.Join(npDir, p), filepath.Join(ncalrpcDir, "np", p)
		if fi, err := os.Lstat(link); err == nil {
			if fi.Mode()&os.ModeSymlink == 0 {
				log.WithField("path", link).Warn("not a symlink: left alone")
				continue
			}
			if t, _ := os.Readlink(link); t == target {
				continue
			}
			os.Remove(link)
		}
		if err := os.Symlink(target, link); err != nil {
			return err
		}
	}
	return nil
}

// preparePipe checks the pipe arrangement before fsrvpd binds its socket,
// regenerates the redirect links, and logs which arrangement is active.
func preparePipe(ctx context.Context, smbConf, socketDir, libexec string, log *logrus.Entry) (string, error) {
	g, err := readSambaGlobals(ctx, smbConf)
	if err != nil {
		return "", err
	}
	mode, err := choosePipeMode(g, socketDir, libexec)
	if err != nil {
		return "", err
	}
	if mode == PipeRedirect {
		pipes, err := otherPipes(ctx, libexec)
		if err != nil {
			return "", err
		}
		if err := linkOtherPipes(socketDir, g.ncalrpcDir, pipes, log); err != nil {
			return "", fmt.Errorf("linking Samba's other pipes into %s: %w", socketDir, err)
		}
		log.WithField("pipes", len(pipes)).Debug("other pipes linked to Samba's sockets")
	}
	msg := map[string]string{
		PipeRedirect:  "smbd is redirected to fsrvpd's socket directory; Samba's other pipes are linked through",
		PipeDiverted:  "Samba's rpcd_fsrvp is diverted; samba-dcerpcd cannot serve the pipe",
		PipeNoHelpers: "smbd starts no samba-dcerpcd (rpc start on demand helpers = no); pipes other than FSRVP need a standalone samba-dcerpcd",
	}[mode]
	log.WithFields(logrus.Fields{"pipe_mode": mode, "socket_dir": socketDir}).Info(msg)
	return mode, nil
}
