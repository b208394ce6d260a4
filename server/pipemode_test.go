package server

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestChoosePipeMode(t *testing.T) {
	libexec := t.TempDir()
	withFsrvp := t.TempDir()
	os.WriteFile(filepath.Join(withFsrvp, "rpcd_fsrvp"), nil, 0o755)
	cases := []struct {
		name    string
		g       sambaGlobals
		dir     string
		libexec string
		want    string
		errHas  string
	}{
		{"redirected", sambaGlobals{ncalrpcDir: "/run/samba/ncalrpc", externalDir: "/run/fsrvpd", onDemandHelpers: true}, "/run/fsrvpd", withFsrvp, PipeRedirect, ""},
		{"diverted", sambaGlobals{ncalrpcDir: "/run/samba/ncalrpc", onDemandHelpers: true}, "/run/samba/ncalrpc", libexec, PipeDiverted, ""},
		{"no helpers", sambaGlobals{ncalrpcDir: "/run/samba/ncalrpc"}, "/run/samba/ncalrpc", withFsrvp, PipeNoHelpers, ""},
		{"unprotected", sambaGlobals{ncalrpcDir: "/run/samba/ncalrpc", onDemandHelpers: true}, "/run/samba/ncalrpc", withFsrvp, "", "dpkg-divert"},
		{"smbd looks elsewhere", sambaGlobals{ncalrpcDir: "/run/samba/ncalrpc", onDemandHelpers: true}, "/run/fsrvpd", withFsrvp, "", "external_rpc_pipe:socket_dir = /run/fsrvpd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := choosePipeMode(tc.g, tc.dir, tc.libexec)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.errHas)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("= %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestLinkOtherPipes(t *testing.T) {
	dir, ncalrpc := t.TempDir(), "/run/samba/ncalrpc"
	np := filepath.Join(dir, "np")
	os.MkdirAll(np, 0o700)
	os.Symlink("/old/target", filepath.Join(np, "srvsvc"))
	os.Symlink("/x", filepath.Join(np, "gone"))
	os.WriteFile(filepath.Join(np, "fssagentrpc"), nil, 0o600) // ours, not a symlink
	log := logrus.NewEntry(logrus.New())
	log.Logger.SetOutput(io.Discard)
	if err := linkOtherPipes(dir, ncalrpc, []string{"lsarpc", "srvsvc"}, log); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"lsarpc", "srvsvc"} {
		if got, _ := os.Readlink(filepath.Join(np, p)); got != filepath.Join(ncalrpc, "np", p) {
			t.Errorf("%s -> %q", p, got)
		}
	}
	if _, err := os.Lstat(filepath.Join(np, "gone")); err == nil {
		t.Error("stale link kept")
	}
	if fi, err := os.Lstat(filepath.Join(np, "fssagentrpc")); err != nil || fi.Mode()&os.ModeSymlink != 0 {
		t.Error("our socket path was touched")
	}
}

// readSambaGlobals and otherPipes against the installed Samba.
func TestSambaGlobalsAndPipes(t *testing.T) {
	if _, err := exec.LookPath("testparm"); err != nil {
		if os.Getenv("FSRVPD_TEST_STRICT") == "1" {
			t.Fatal("testparm missing (apt-get install samba-common-bin)")
		}
		t.Skip("testparm missing (apt-get install samba-common-bin)")
	}
	conf := filepath.Join(t.TempDir(), "smb.conf")
	os.WriteFile(conf, []byte("[global]\n\tncalrpc dir = /tmp/x/ncalrpc\n\texternal_rpc_pipe:socket_dir = /tmp/x/fsrvpd\n\trpc start on demand helpers = no\n"), 0o644)
	g, err := readSambaGlobals(t.Context(), conf)
	if err != nil {
		t.Fatal(err)
	}
	if g.ncalrpcDir != "/tmp/x/ncalrpc" || g.externalDir != "/tmp/x/fsrvpd" || g.onDemandHelpers {
		t.Fatalf("%+v", g)
	}
	if _, err := os.Stat("/usr/libexec/samba/rpcd_classic"); err == nil {
		pipes, err := otherPipes(t.Context(), "/usr/libexec/samba")
		if err != nil || !strings.Contains(strings.Join(pipes, ","), "srvsvc") || strings.Contains(strings.Join(pipes, ","), "fssagentrpc") {
			t.Fatalf("pipes %v, %v", pipes, err)
		}
	}
}
