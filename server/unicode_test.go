package server

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/server/config"
)

// Shares whose names are not ASCII (Latin-1, CJK, outside the BMP) go
// through the whole sequence over TCP with our client: go-msrpc's stubs
// count such strings wrong both ways (client requests, server responses),
// and both sides write them with msdtyp.WriteWString instead.
func TestNonASCIIShareNames(t *testing.T) {
	dir := t.TempDir()
	c := config.Demo(dir)
	c.Server.Listen = []string{"127.0.0.1:0"}
	c.Server.EndpointMapper = ""
	names := []string{"Données", "資料", "Sauvegarde \U0001F4BE"}
	for i, n := range names {
		vol := c.Storage.Dir.Volumes[i%2]
		c.Shares = append(c.Shares, config.Share{Name: n, Path: filepath.Join(vol, "u"+string(rune('a'+i)))})
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	makeShares(t, c, true)
	d := runDaemon(t, c, nil)
	ctx := t.Context()
	cl, err := client.Dial(ctx, d.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, n := range names {
		ok, owner, err := cl.IsPathSupported(ctx, cl.ResolveShare(n))
		if err != nil || !ok || owner == "" {
			t.Fatalf("IsPathSupported(%q) = %v, %q, %v", n, ok, owner, err)
		}
	}
	// One set over the three (two on one volume: one shadow copy, two
	// mappings), exposed as <name>@{GUID}.
	res, err := cl.Create(ctx, client.CreateRequest{Context: client.CtxNASRollback, Shares: names, RecoveryComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range res.Mappings {
		if !strings.HasSuffix(m.ShareUNC, `\`+names[i]+`\`) || !strings.HasSuffix(m.ExposedName, `\`+names[i]+"@{"+m.ShadowCopyID.String()+"}") {
			t.Errorf("mapping %d: %q -> %q", i, m.ShareUNC, m.ExposedName)
		}
	}
	if present, _, err := cl.IsPathShadowCopied(ctx, cl.ResolveShare(names[1])); err != nil || !present {
		t.Errorf("IsPathShadowCopied(%q) = %v, %v", names[1], present, err)
	}
	if err := cl.Delete(ctx, res.ShadowCopySetID, res.Mappings); err != nil {
		t.Fatal(err)
	}
	if present, _, err := cl.IsPathShadowCopied(ctx, cl.ResolveShare(names[2])); err != nil || present {
		t.Errorf("IsPathShadowCopied(%q) after delete = %v, %v", names[2], present, err)
	}
}
