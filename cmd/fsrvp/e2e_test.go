package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/clienttest"
	"github.com/fsrvpd/fsrvpd/rpc"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/sirupsen/logrus"
)

// TestE2E runs the CLI with the real client.Dial against an rpc.Server
// serving clienttest.Fake.
func TestE2E(t *testing.T) {
	f := clienttest.NewFake("share1")
	l := logrus.New()
	l.SetOutput(io.Discard)
	s := &rpc.Server{Logger: logrus.NewEntry(l)}
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(f))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	server := "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	cli := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, os.Getenv, strings.NewReader(stdin), &out, &errb, client.Dial)
		return code, out.String(), errb.String()
	}
	code, doc, stderr := cli("", "-server", server, "-json", "create", "share1")
	if code != 0 {
		t.Fatalf("create: %d %s", code, stderr)
	}
	var d setDocument
	if err := json.Unmarshal([]byte(doc), &d); err != nil || len(d.Mappings) != 1 || d.Mappings[0].ShareUNC != `\\127.0.0.1\share1\` {
		t.Fatalf("create -json: %v\n%s", err, doc)
	}
	if code, _, stderr := cli(doc, "-server", server, "delete", "-from", "-"); code != 0 {
		t.Fatalf("delete: %d %s", code, stderr)
	}
	if code, _, stderr := cli("", "-server", server, "abort", d.ShadowCopySetID.String()); code != 1 ||
		stderr != "fsrvp: AbortShadowCopySet: FSRVP_E_SHADOWCOPYSET_ID_MISMATCH (0x80042501)\n" {
		t.Errorf("abort of a deleted set: %d %q", code, stderr)
	}
	if code, _, _ := cli("", "-server", "127.0.0.1", "-epm", "1", "-timeout", "5s", "version"); code != 3 {
		t.Errorf("unreachable endpoint mapper: exit %d, want 3", code)
	}
}
