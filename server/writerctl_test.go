package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/vss"
	"github.com/fsrvpd/fsrvpd/client/writerctl"
	"github.com/fsrvpd/fsrvpd/server/config"
	"github.com/fsrvpd/fsrvpd/server/writers"
)

// controlDaemon runs a demo daemon with one writer on share1's volume
// whose service hooks leave marks in dir.
func controlDaemon(t *testing.T, allowUnauth bool) (addr string, c config.Config, marks string, d *Daemon) {
	t.Helper()
	dir := t.TempDir()
	c = config.Demo(dir)
	c.Server.Listen = []string{"127.0.0.1:0"}
	c.Server.EndpointMapper = ""
	c.FSRVP.AllowUnauthenticated = allowUnauth
	c.Metrics.Listen = "127.0.0.1:0"
	for _, s := range c.Shares {
		os.MkdirAll(s.Path, 0o755)
	}
	marks = filepath.Join(dir, "marks")
	c.Writer = []writers.Writer{{
		Name: "app", WriterID: uuid.NewString(), InstanceID: uuid.NewString(), Volumes: []string{c.Storage.Dir.Volumes[0]},
		Components: []writers.Component{{Type: "filegroup", Name: "files", Files: []writers.FileSpec{{Path: c.Shares[0].Path, Filespec: "*"}}}},
		Hooks: map[writers.Phase]writers.Hook{
			"service-stop":  {Command: []string{"sh", "-c", `echo stop >> ` + marks}},
			"service-start": {Command: []string{"sh", "-c", `echo start service failed >&2; exit 1`}},
		},
	}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	addr, d = startDaemon(t, c)
	return addr, c, marks, d
}

func dialControl(t *testing.T, ctx context.Context, addr string) *writerctl.Client {
	t.Helper()
	raw, err := client.DialRaw(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Conn.Close(context.Background()) })
	wc, err := writerctl.New(context.WithoutCancel(ctx), raw.Conn, raw.BindOptions...)
	if err != nil {
		t.Fatal(err)
	}
	return wc
}

// The private writer-control interface beside FSRVP on TCP: documents of
// a set, service hooks, FSRVP's authorization.
func TestWriterControlOverTCP(t *testing.T) {
	addr, c, marks, d := controlDaemon(t, true)
	ctx := t.Context()
	cl, err := client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	res, err := cl.Create(ctx, client.CreateRequest{Shares: []string{"share1"}, RecoveryComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := scrape(t, d); m["fsrvpd_writers_freeze_window_seconds_count"] != 1 {
		t.Errorf("writers' freeze window not in the metrics: %v", m["fsrvpd_writers_freeze_window_seconds_count"])
	}
	wc := dialControl(t, ctx, addr)
	data, err := wc.ReadSetDocument(ctx, res.ShadowCopySetID, vss.BackupComponentsFile)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := vss.ParseBackupComponents(data)
	if err != nil {
		t.Fatal(err)
	}
	if comp, err := bc.Component(c.Writer[0].WriterID, "", "files"); err != nil || !comp.BackupSucceeded {
		t.Fatalf("component %+v %v", comp, err)
	}
	if data, err := wc.ReadSetDocument(ctx, res.ShadowCopySetID, `WRITER_METADATA\`+c.Writer[0].InstanceID+".xml"); err != nil {
		t.Fatal(err)
	} else if _, err := vss.ParseWriterMetadata(data); err != nil {
		t.Fatal(err)
	}
	for name, code := range map[string]uint32{"../../fsrvpd.db": writerctl.E_INVALIDARG, "/etc/passwd": writerctl.E_INVALIDARG, "nothing.xml": writerctl.E_FILE_NOT_FOUND} {
		if _, err := wc.ReadSetDocument(ctx, res.ShadowCopySetID, name); !isCode(err, code) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := wc.ReadSetDocument(ctx, uuid.New(), vss.BackupComponentsFile); !writerctl.IsNotFound(err) {
		t.Errorf("unknown set: %v", err)
	}

	if err := wc.RunWriterService(ctx, "APP", writerctl.ServiceStop); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(marks); string(b) != "stop\n" {
		t.Fatalf("service-stop hook: %q", b)
	}
	if err := wc.RunWriterService(ctx, c.Writer[0].InstanceID, writerctl.ServiceStart); !isCode(err, writerctl.E_FAIL) {
		t.Errorf("failing hook: %v", err)
	}
	if err := wc.RunWriterService(ctx, "nobody", writerctl.ServiceStop); !writerctl.IsNotFound(err) {
		t.Errorf("unknown writer: %v", err)
	}
	if err := wc.RunWriterService(ctx, "app", 7); !isCode(err, writerctl.E_INVALIDARG) {
		t.Errorf("bad action: %v", err)
	}
	if err := cl.Delete(ctx, res.ShadowCopySetID, res.Mappings); err != nil {
		t.Fatal(err)
	}
}

func TestWriterControlRefusesUnauthenticated(t *testing.T) {
	addr, _, marks, _ := controlDaemon(t, false)
	wc := dialControl(t, t.Context(), addr)
	if err := wc.RunWriterService(t.Context(), "app", writerctl.ServiceStop); !isCode(err, writerctl.E_ACCESSDENIED) {
		t.Fatalf("unauthenticated caller: %v", err)
	}
	if _, err := wc.ReadSetDocument(t.Context(), uuid.New(), vss.BackupComponentsFile); !isCode(err, writerctl.E_ACCESSDENIED) {
		t.Fatalf("unauthenticated caller: %v", err)
	}
	if _, err := os.Stat(marks); err == nil {
		t.Fatal("the hook ran for an unauthenticated caller")
	}
}

func isCode(err error, code uint32) bool {
	e, ok := err.(*writerctl.Error)
	return ok && e.Code == code
}
