package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsrvpd/fsrvpd/server/config"
)

// The packaged default configuration is valid as shipped.
func TestDistConfigValid(t *testing.T) {
	c, err := config.Load(filepath.Join("dist", "fsrvpd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Samba.Enabled || c.Storage.Backend != "btrfs" || c.Server.StateDir != "/var/lib/fsrvpd" {
		t.Errorf("default configuration is not Samba on btrfs with state in /var/lib/fsrvpd: %+v", c)
	}
}

func TestDoctorCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[server]\nbogus = 1\n"), 0o644)
	var out, errb bytes.Buffer
	if code := runDoctor([]string{"-config", bad, "-json"}, &out, &errb); code != 2 {
		t.Errorf("doctor on a bad config: exit %d, want 2 (stderr %s)", code, errb.String())
	}
	var rep struct {
		Results []struct{ Check, Status, Message string }
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("doctor -json: %v\n%s", err, out.String())
	}
	if len(rep.Results) == 0 || rep.Results[0].Check != "config" || rep.Results[0].Status != "fail" || !strings.Contains(rep.Results[0].Message, "bogus") {
		t.Errorf("first finding: %+v", rep.Results)
	}
	out.Reset()
	if code := runDoctor([]string{"extra"}, &out, &errb); code != 2 {
		t.Errorf("doctor with an argument: exit %d, want 2", code)
	}
	if code := run([]string{"doctor", "-h"}); code != 0 {
		t.Errorf("fsrvpd doctor -h: exit %d", code)
	}
}

// Every TOML example of the deployment guide is a valid configuration.
func TestDeploymentExamples(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("dist", "DEPLOYMENT.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(data), "```toml\n")[1:]
	if len(blocks) < 3 {
		t.Fatalf("%d TOML examples, want at least 3", len(blocks))
	}
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		if _, err := config.Parse([]byte(b)); err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, b)
		}
	}
}
