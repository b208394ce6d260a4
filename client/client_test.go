package client

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
)

func TestFiletime(t *testing.T) {
	cases := []struct {
		ft int64
		t  time.Time
	}{
		{116444736000000000, time.Unix(0, 0).UTC()},
		{0, time.Time{}},
		// 2000-01-01 UTC is the well-known 125911584000000000.
		{125911584001234567, time.Date(2000, 1, 1, 0, 0, 0, 123456700, time.UTC)},
		// before 1970
		{1, time.Date(1601, 1, 1, 0, 0, 0, 100, time.UTC)},
	}
	for _, c := range cases {
		if got := FiletimeToTime(c.ft); !got.Equal(c.t) {
			t.Errorf("FiletimeToTime(%d) = %v, want %v", c.ft, got, c.t)
		}
		if got := TimeToFiletime(c.t); got != c.ft {
			t.Errorf("TimeToFiletime(%v) = %d, want %d", c.t, got, c.ft)
		}
	}
	now := time.Now().Truncate(100 * time.Nanosecond)
	if back := FiletimeToTime(TimeToFiletime(now)); !back.Equal(now) {
		t.Errorf("round trip %v -> %v", now, back)
	}
}

func TestCodeNames(t *testing.T) {
	want := map[uint32]string{
		0x80070005: "E_ACCESSDENIED", 0x80070057: "E_INVALIDARG", 0x8007000E: "E_OUTOFMEMORY",
		0x80042301: "FSRVP_E_BAD_STATE", 0x80042302: "FSRVP_E_BAD_ID", 0x80042308: "FSRVP_E_OBJECT_NOT_FOUND",
		0x8004230C: "FSRVP_E_NOT_SUPPORTED", 0x8004230D: "FSRVP_E_OBJECT_ALREADY_EXISTS",
		0x80042311: "FSRVP_E_BAD_STATE_WS2012", 0x80042316: "FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS",
		0x8004231B: "FSRVP_E_UNSUPPORTED_CONTEXT", 0x80042500: "FSSAGENT_E_TIMEOUT",
		0x80042501: "FSRVP_E_SHADOWCOPYSET_ID_MISMATCH", 0x102: "FSRVP_E_WAIT_TIMEOUT",
		0xFFFFFFFF: "FSRVP_E_WAIT_FAILED", 0x80004005: "E_FAIL", 0: "S_OK", 0x12345: "",
	}
	for code, name := range want {
		if got := CodeName(code); got != name {
			t.Errorf("CodeName(%#x) = %q, want %q", code, got, name)
		}
	}
	if len(codeNames) != len(want)-2 {
		t.Errorf("codeNames has %d entries, test covers %d", len(codeNames), len(want)-2)
	}
}

func TestHResultError(t *testing.T) {
	err := error(&HResultError{Op: "AddToShadowCopySet", Code: EObjectAlreadyExists})
	if got := err.Error(); got != "AddToShadowCopySet: FSRVP_E_OBJECT_ALREADY_EXISTS (0x8004230D)" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&HResultError{Op: "Commit", Code: 0x80041234}).Error(); got != "Commit: 0x80041234" {
		t.Errorf("unknown code: %q", got)
	}
	wrapped := fmt.Errorf("outer: %w", err)
	if code, ok := Code(wrapped); !ok || code != EObjectAlreadyExists {
		t.Errorf("Code(wrapped) = %#x, %v", code, ok)
	}
	if _, ok := Code(errors.New("x")); ok {
		t.Error("Code of a plain error should be false")
	}
	te := fmt.Errorf("w: %w", &TransportError{Op: "dial", Err: errors.New("refused")})
	if !IsTransport(te) || IsTransport(wrapped) {
		t.Error("IsTransport misclassifies")
	}
	if _, ok := Code(te); ok {
		t.Error("transport error has no code")
	}
}

func TestParseContext(t *testing.T) {
	cases := []struct {
		name, mode string
		want       uint32
		wantErr    bool
	}{
		{"backup", "", 0, false},
		{"backup", "ro", 0, false},
		{"backup", "rw", 0x00400000, false},
		{"file_share_backup", "ro", 0x10, false},
		{"FILE-SHARE-BACKUP", "RW", 0x00400010, false},
		{"nas_rollback", "ro", 0x19, false},
		{"FSRVP_CTX_NAS_ROLLBACK", "rw", 0x00400019, false},
		{"app_rollback", "", 0x9, false},
		{"0x400010", "", 0x400010, false},
		{"25", "", 25, false},
		{"bogus", "", 0, true},
		{"backup", "wo", 0, true},
	}
	for _, c := range cases {
		got, err := ParseContext(c.name, c.mode)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("ParseContext(%q, %q) = %#x, %v; want %#x, err=%v", c.name, c.mode, got, err, c.want, c.wantErr)
		}
	}
	names := map[uint32]string{0: "backup", 0x400019: "nas_rollback+rw", 0x12: "file_share_backup+ro", 0x7: "0x00000007"}
	for v, n := range names {
		if got := ContextName(v); got != n {
			t.Errorf("ContextName(%#x) = %q, want %q", v, got, n)
		}
	}
	for _, c := range contextNames {
		for _, mode := range []string{"ro", "rw"} {
			v, _ := ParseContext(c.name, mode)
			n, m, _ := strings.Cut(ContextName(v), "+")
			if n != c.name || (mode == "rw") != (m == "rw") {
				t.Errorf("ContextName(ParseContext(%s, %s)) = %s", c.name, mode, ContextName(v))
			}
		}
	}
}

func TestShareUNC(t *testing.T) {
	if got := ShareUNC("srv", "share1"); got != `\\srv\share1\` {
		t.Errorf("ShareUNC = %q", got)
	}
	cases := map[string]string{
		"share1":           `\\10.0.0.1\share1\`,
		`\\other\share2`:   `\\other\share2`,
		`\\other\share2\`:  `\\other\share2\`,
		"//other/s3/":      `\\other\s3\`,
		"hidden$":          `\\10.0.0.1\hidden$\`,
		`share4\`:          `\\10.0.0.1\share4\`,
		`\\h\s\sub\folder`: `\\h\s\sub\folder`,
	}
	for in, want := range cases {
		if got := ResolveShare("10.0.0.1", in); got != want {
			t.Errorf("ResolveShare(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	cases := []struct {
		in      string
		want    Target
		binding string
		wantErr bool
	}{
		{"127.0.0.1", Target{Host: "127.0.0.1"}, "ncacn_ip_tcp:127.0.0.1", false},
		{"fileserver.example.com", Target{Host: "fileserver.example.com"}, "ncacn_ip_tcp:fileserver.example.com", false},
		{"127.0.0.1:1234", Target{Host: "127.0.0.1", Port: "1234"}, "ncacn_ip_tcp:127.0.0.1[1234]", false},
		{"nas:49152", Target{Host: "nas", Port: "49152"}, "ncacn_ip_tcp:nas[49152]", false},
		{"[::1]:1234", Target{Host: "::1", Port: "1234"}, "ncacn_ip_tcp:::1[1234]", false},
		{"::1", Target{Host: "::1"}, "ncacn_ip_tcp:::1", false},
		{"ncacn_ip_tcp:127.0.0.1[1234]", Target{Host: "127.0.0.1", Port: "1234"}, "ncacn_ip_tcp:127.0.0.1[1234]", false},
		{"ncacn_ip_tcp:127.0.0.1", Target{Host: "127.0.0.1"}, "ncacn_ip_tcp:127.0.0.1", false},
		{"ncacn_ip_tcp:127.0.0.1[]", Target{Host: "127.0.0.1"}, "ncacn_ip_tcp:127.0.0.1", false},
		{"ncacn_ip_tcp:127.0.0.1[1234,sign]", Target{}, "", true},
		{"ncacn_np:srv[\\pipe\\FssagentRpc]", Target{}, "", true},
		{"127.0.0.1:0", Target{}, "", true},
		{"127.0.0.1:99999", Target{}, "", true},
		{"127.0.0.1:x", Target{}, "", true},
		{"", Target{}, "", true},
		{"ncacn_ip_tcp:[1234]", Target{}, "", true},
	}
	for _, c := range cases {
		got, err := ParseTarget(c.in)
		if (err != nil) != c.wantErr {
			t.Errorf("ParseTarget(%q) error = %v, wantErr %v", c.in, err, c.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got != c.want || got.Binding() != c.binding {
			t.Errorf("ParseTarget(%q) = %+v (%s), want %+v (%s)", c.in, got, got.Binding(), c.want, c.binding)
		}
		// The binding must be one go-msrpc parses back to the same thing.
		b, err := dcerpc.ParseStringBinding(got.Binding())
		if err != nil || b.NetworkAddress != got.Host || b.Endpoint != got.Port || b.ProtocolSequence != dcerpc.ProtocolSequenceIPTCP {
			t.Errorf("go-msrpc parses %q as %+v, %v", got.Binding(), b, err)
		}
	}
}

func TestEPMAddr(t *testing.T) {
	cases := map[string]string{"": "10.1.1.1:135", "1135": "10.1.1.1:1135", "127.0.0.1:5135": "127.0.0.1:5135", "epmhost": "epmhost:135"}
	for in, want := range cases {
		if got, err := epmAddr("10.1.1.1", in); err != nil || got != want {
			t.Errorf("epmAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestMapTower(t *testing.T) {
	tw := mapTower(fsrvp.FileServerVSSAgentSyntaxV1_0)
	fl := tw.Floors()
	if len(fl) != 5 {
		t.Fatalf("%d floors", len(fl))
	}
	b := tw.Binding()
	if !b.SyntaxID.IfUUID.Equals(fsrvp.FileServerVSSAgentSyntaxUUID) || b.SyntaxID.IfVersionMajor != 1 || b.SyntaxID.IfVersionMinor != 0 {
		t.Errorf("interface floor: %+v", b.SyntaxID)
	}
	if !b.TransferSyntaxID.IfUUID.Equals(dcerpc.TransferNDR) || b.TransferSyntaxID.IfVersionMajor != 2 {
		t.Errorf("transfer floor: %+v", b.TransferSyntaxID)
	}
	if b.StringBinding.ProtocolSequence != dcerpc.ProtocolSequenceIPTCP {
		t.Errorf("protseq %v", b.StringBinding.ProtocolSequence)
	}
}

func TestMillis(t *testing.T) {
	if millis(1800*time.Second) != 1800000 || millis(-1) != 0 || millis(1<<62) != 0xFFFFFFFF {
		t.Error("millis conversion")
	}
}

func TestBindOptions(t *testing.T) {
	has := func(opts []dcerpc.Option) bool {
		for _, o := range opts {
			if _, ok := o.(dcerpc.SecurityOption); ok {
				return true
			}
		}
		return false
	}
	def, _ := newConfig(nil).bindOptions()
	if !has(def) {
		t.Error("default bind options must carry WithInsecure")
	}
	cfg := newConfig([]Option{WithRPCOptions(dcerpc.WithSeal()), WithNDR64()})
	opts, _ := cfg.bindOptions()
	if len(opts) != 2 {
		t.Errorf("with a security option, WithInsecure must not be added: %d options", len(opts))
	}
}
