package np

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// captureDir holds the hex captures of real smbd requests (Samba 4.17.12
// and 4.22.6); see its README.
const captureDir = "/work/shared/research/npa-captures"

// testdata/ holds copies of a few captures so the tests run without the
// research tree.
func readHex(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(raw)), ""))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// summary is the JSON block at the end of a connN_npa_req.decoded.txt,
// written by tools/npa_decode.py.
type summary struct {
	Level         uint32   `json:"level"`
	Transport     uint8    `json:"transport"`
	Remote        string   `json:"remote"`
	Local         string   `json:"local"`
	SIDs          []string `json:"sids"`
	PrivilegeMask string   `json:"privilege_mask"`
	UnixToken     struct {
		UID    uint64   `json:"uid"`
		GID    uint64   `json:"gid"`
		Groups []uint64 `json:"groups"`
	} `json:"unix_token"`
	Account    string   `json:"account"`
	Domain     string   `json:"domain"`
	UnixName   string   `json:"unix_name"`
	SessionKey string   `json:"session_key"`
	NPAFlags   []string `json:"npa_flags"`
	SMB3SID    []string `json:"smb3_sid"`
}

func readSummary(t *testing.T, path string) summary {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte("\n{"))
	if i < 0 {
		t.Fatalf("%s: no JSON summary", path)
	}
	var s summary
	if err := json.Unmarshal(raw[i+1:], &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// captures lists every captured request of the research tree (if present)
// and of testdata/.
func captures(t testing.TB) []string {
	t.Helper()
	var files []string
	seen := map[string]bool{}
	for _, dir := range []string{captureDir, "testdata"} {
		found, _ := filepath.Glob(filepath.Join(dir, "*", "conn*_npa_req.hex"))
		for _, f := range found {
			key := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
			if !seen[key] {
				seen[key] = true
				files = append(files, f)
			}
		}
	}
	if len(files) == 0 {
		t.Fatal("no captures")
	}
	return files
}

func TestDecodeCaptures(t *testing.T) {
	levels := map[uint32]int{}
	for _, f := range captures(t) {
		name := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			blob := readHex(t, f)
			want := readSummary(t, strings.TrimSuffix(f, ".hex")+".decoded.txt")
			q, err := DecodeRequest(blob)
			if err != nil {
				t.Fatal(err)
			}
			levels[q.Level]++
			remote := fmt.Sprintf("%s (%s:%d)", q.RemoteClientName, q.RemoteClientAddr, q.RemoteClientPort)
			local := fmt.Sprintf("%s (%s:%d)", q.LocalServerName, q.LocalServerAddr, q.LocalServerPort)
			checks := []struct {
				what      string
				got, want any
			}{
				{"level", q.Level, want.Level},
				{"transport", q.Transport, want.Transport},
				{"remote", remote, want.Remote},
				{"local", local, want.Local},
				{"sids", q.SIDs, want.SIDs},
				{"privilege_mask", fmt.Sprintf("%#x", q.PrivilegeMask), want.PrivilegeMask},
				{"uid", q.UID, want.UnixToken.UID},
				{"gid", q.GID, want.UnixToken.GID},
				{"groups", q.Groups, want.UnixToken.Groups},
				{"account", q.AccountName, want.Account},
				{"domain", q.DomainName, want.Domain},
				{"unix_name", q.UnixName, want.UnixName},
				{"session_key", hex.EncodeToString(q.SessionKey), want.SessionKey},
			}
			for _, c := range checks {
				if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
			s, err := q.Session()
			if err != nil {
				t.Fatal(err)
			}
			if s.ClientAddr != q.RemoteClientAddr || s.ClientPort != q.RemoteClientPort || s.User != want.Account ||
				s.Domain != want.Domain || !s.HasUnixToken || uint64(s.UID) != want.UnixToken.UID {
				t.Errorf("session %+v", s)
			}
			// Internal SIDs are stripped, the rest is kept in order.
			var plain []string
			for _, sid := range want.SIDs {
				if !slices.Contains(want.NPAFlags, sid) && !slices.Contains(want.SMB3SID, sid) {
					plain = append(plain, sid)
				}
			}
			if !slices.Equal(s.SIDs, plain) {
				t.Errorf("session SIDs %v, want %v", s.SIDs, plain)
			}
			if s.Encrypted != (len(want.SMB3SID) > 0) {
				t.Errorf("encrypted = %v, smb3 SIDs %v", s.Encrypted, want.SMB3SID)
			}
			// Re-encoded reply for this level.
			rep := EncodeReply(q.Level, FileTypeMessageMode)
			if binary.LittleEndian.Uint32(rep[8:]) != q.Level {
				t.Errorf("reply level %x", rep)
			}
		})
	}
	t.Logf("levels decoded: %v", levels)
	if levels[7] == 0 || levels[8] == 0 {
		t.Errorf("expected level 7 and level 8 captures, got %v", levels)
	}
}

// The level-7 reply must be byte-identical to Samba's own samba-dcerpcd
// reply (exp7) and to what the reference listener sent in every capture
// (file_type 2 except exp8, the byte-mode run, and exp9/exp10 which sent
// deliberately wrong replies).
func TestEncodeReplyGolden(t *testing.T) {
	golden := filepath.Join(captureDir, "exp7_samba_golden_rep", "samba_npa_rep.hex")
	if _, err := os.Stat(golden); err != nil {
		golden = filepath.Join("testdata", "exp7_samba_golden_rep", "samba_npa_rep.hex")
	}
	want := readHex(t, golden)
	if got := EncodeReply(7, FileTypeMessageMode); !bytes.Equal(got, want) {
		t.Fatalf("reply\n got %x\nwant %x", got, want)
	}
	for _, f := range captures(t) {
		exp := filepath.Base(filepath.Dir(f))
		if strings.HasPrefix(exp, "exp8_") || strings.HasPrefix(exp, "exp9_") || strings.HasPrefix(exp, "exp10_") {
			continue
		}
		repFile := strings.Replace(f, "_npa_req.hex", "_npa_rep.hex", 1)
		if _, err := os.Stat(repFile); err != nil {
			continue
		}
		q, err := DecodeRequest(readHex(t, f))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := EncodeReply(q.Level, FileTypeMessageMode), readHex(t, repFile); !bytes.Equal(got, want) {
			t.Errorf("%s: reply\n got %x\nwant %x", exp, got, want)
		}
	}
}

func decodeCapture(t *testing.T, exp string) *rpc.Session {
	t.Helper()
	f := filepath.Join(captureDir, exp, "conn1_npa_req.hex")
	if _, err := os.Stat(f); err != nil {
		f = filepath.Join("testdata", exp, "conn1_npa_req.hex")
	}
	q, err := DecodeRequest(readHex(t, f))
	if err != nil {
		t.Fatal(err)
	}
	s, err := q.Session()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBackupCapableCaptures(t *testing.T) {
	for _, c := range []struct {
		exp   string
		want  bool
		extra []string
	}{
		{"exp1_nak_npatest1", false, nil},              // plain user, uid 1001
		{"exp2_full_root", true, nil},                  // uid 0
		{"exp11_priv_admin_npatest1", true, nil},       // S-1-5-32-544, 0x1ffffff0
		{"exp12_backup_priv_only_npatest1", true, nil}, // SeBackupPrivilege 0x200 only
		{"exp16_samba422_level8", false, nil},          // plain user, level 8
		// An extra configured group: npatest1's primary group "None".
		{"exp1_nak_npatest1", true, []string{"s-1-5-21-3474444041-1445776537-2226239298-513"}},
		{"exp1_nak_npatest1", false, []string{"S-1-22-2041152804-0"}}, // internal SIDs are stripped
	} {
		s := decodeCapture(t, c.exp)
		if got := s.IsBackupCapable(c.extra...); got != c.want {
			t.Errorf("%s %v: IsBackupCapable = %v, want %v (uid %d, sids %v, privs %#x)",
				c.exp, c.extra, got, c.want, s.UID, s.SIDs, s.Privileges)
		}
	}
	s := decodeCapture(t, "exp12_backup_priv_only_npatest1")
	if s.Privileges != rpc.PrivBackup || s.HasSID(rpc.SIDAdministrators) || s.UID == 0 {
		t.Errorf("exp12: %+v", s)
	}
	s = decodeCapture(t, "exp11_priv_admin_npatest1")
	if !s.HasSID(rpc.SIDAdministrators) || s.Privileges != 0x1ffffff0 {
		t.Errorf("exp11: %+v", s)
	}
	s = decodeCapture(t, "exp13_smb3_encrypted_root")
	if !s.Encrypted || s.SMBDialect != 0x311 || s.SMBCipher != 2 {
		t.Errorf("exp13: %+v", s)
	}
	// No unix token: uid 0 is not assumed.
	if (&rpc.Session{}).IsBackupCapable() || (*rpc.Session)(nil).IsBackupCapable() {
		t.Error("empty session is backup capable")
	}
}

func TestDecodeRejects(t *testing.T) {
	base := readHex(t, captures(t)[0])
	q, err := DecodeRequest(base)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(base)) }
	setLevel := func(l uint32) []byte {
		return mod(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[8:], l)
			binary.LittleEndian.PutUint32(b[12:], l)
			return b
		})
	}
	cases := map[string][]byte{
		"empty":        nil,
		"short":        base[:10],
		"bad magic":    mod(func(b []byte) []byte { b[4] = 'X'; return b }),
		"discriminant": mod(func(b []byte) []byte { b[12]++; return b }),
		"level 6":      setLevel(6),
		"level 9":      setLevel(9),
		"level 0":      setLevel(0),
		"wrong level":  setLevel(map[uint32]uint32{7: 8, 8: 7}[q.Level]),
		"trailing": mod(func(b []byte) []byte {
			b = append(b, 0, 0, 0, 0)
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			return b
		}),
		"length word": mod(func(b []byte) []byte { b[3]++; return b }),
		"huge sids": mod(func(b []byte) []byte {
			// num_sids at 200 and its max_count at 204 (level 7 and 8).
			binary.LittleEndian.PutUint32(b[200:], 0x7fffffff)
			binary.LittleEndian.PutUint32(b[204:], 0x7fffffff)
			return b
		}),
		"sids max_count": mod(func(b []byte) []byte { b[204]++; return b }),
		"string offset":  mod(func(b []byte) []byte { b[52] = 1; return b }),
		"string length":  mod(func(b []byte) []byte { b[56] = 0xff; return b }),
	}
	for i := 16; i < len(base); i += 37 {
		cases[fmt.Sprintf("truncated at %d", i)] = mod(func(b []byte) []byte {
			b = b[:i]
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			return b
		})
	}
	for name, b := range cases {
		if _, err := DecodeRequest(b); err == nil {
			t.Errorf("%s: decoded", name)
		} else if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %v does not wrap ErrMalformed", name, err)
		}
	}
	// Claims are not decoded: fail closed.
	l8 := filepath.Join(captureDir, "exp16_samba422_level8", "conn1_npa_req.hex")
	if _, err := os.Stat(l8); err == nil {
		b := readHex(t, l8)
		binary.LittleEndian.PutUint32(b[364:], 1) // num_local_claims
		if _, err := DecodeRequest(b); err == nil || !strings.Contains(err.Error(), "claims") {
			t.Errorf("claims: %v", err)
		}
	}
}

func TestSessionRejects(t *testing.T) {
	q, err := DecodeRequest(readHex(t, captures(t)[0]))
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(q Request) Request{
		"no token":    func(q Request) Request { q.HasToken = false; return q },
		"no session":  func(q Request) Request { q.HasSessionInfo = false; return q },
		"addr":        func(q Request) Request { q.RemoteClientAddr = "vm"; return q },
		"empty addr":  func(q Request) Request { q.RemoteClientAddr = ""; return q },
		"uid 64 bits": func(q Request) Request { q.UID = 1 << 32; return q },
		"group":       func(q Request) Request { q.Groups = []uint64{1 << 40}; return q },
	} {
		r := f(*q)
		if _, err := r.Session(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	r := *q
	r.RemoteClientAddr = "::ffff:192.0.2.7"
	if s, err := r.Session(); err != nil || s.ClientAddr != "192.0.2.7" {
		t.Errorf("mapped v4: %v %v", s, err)
	}
}
