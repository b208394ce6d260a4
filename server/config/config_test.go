package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidSamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.toml")
	if len(files) == 0 {
		t.Fatal("no samples")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFullSampleValues(t *testing.T) {
	c, err := Load("testdata/valid/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.FSRVP.SequenceTimeout.Duration != 2*time.Second || c.FSRVP.RetryLimit != -1 || len(c.Shares) != 2 || c.Server.Name != "FILER1" {
		t.Fatalf("%+v", c)
	}
}

// Each invalid sample fails, and its error names every line of its
// "error" file.
func TestInvalidSamples(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/invalid/*")
	if len(dirs) == 0 {
		t.Fatal("no samples")
	}
	for _, d := range dirs {
		t.Run(filepath.Base(d), func(t *testing.T) {
			_, err := Load(filepath.Join(d, "fsrvpd.toml"))
			if err == nil {
				t.Fatal("accepted")
			}
			want, _ := os.ReadFile(filepath.Join(d, "error"))
			for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
				if !strings.Contains(err.Error(), line) {
					t.Errorf("error %q does not mention %q", err, line)
				}
			}
		})
	}
}

func TestDemoIsValid(t *testing.T) {
	c := Demo("/tmp/fsrvpd-demo")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Shares) != 2 || c.Shares[0].Name != "share1" || c.Shares[1].Name != "share2" {
		t.Fatalf("demo shares %+v", c.Shares)
	}
}

func TestAuthAccounts(t *testing.T) {
	c, err := Load("testdata/valid/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Auth.Accounts) != 2 || c.FSRVP.MinAuthLevel != "privacy" || c.FSRVP.PipeAuth != "rpc" {
		t.Fatalf("auth %+v fsrvp %+v", c.Auth, c.FSRVP)
	}
	a := c.Auth.Accounts[0]
	if got := strings.Join(a.AllSIDs(), ","); got != "S-1-5-21-1-2-3-1001,S-1-5-32-551" {
		t.Errorf("SIDs %s", got)
	}
	if s := fmt.Sprintf("%v %+v %#v", a, a, a); strings.Contains(s, "31d6cfe0") {
		t.Errorf("NT hash printed: %s", s)
	}
	if h, err := a.LoadNTHash(); err != nil || h != "31d6cfe0d16ae931b73c59d7e0c089c0" {
		t.Errorf("LoadNTHash = %q, %v", h, err)
	}
	f := filepath.Join(t.TempDir(), "h")
	os.WriteFile(f, []byte("8846F7EAEE8FB117AD06BDD830B7586C\n"), 0o600)
	b := Account{User: "x", NTHashFile: f}
	if h, err := b.LoadNTHash(); err != nil || h != "8846F7EAEE8FB117AD06BDD830B7586C" {
		t.Errorf("LoadNTHash(file) = %q, %v", h, err)
	}
	d := Default()
	if d.FSRVP.MinAuthLevel != "integrity" || d.FSRVP.PipeAuth != "session" || len(d.Auth.Mechanisms) != 2 {
		t.Errorf("defaults %+v %+v", d.FSRVP, d.Auth)
	}
}
