package fsrvp

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/uuid"
	fssagent "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/oiweiwei/go-msrpc/ndr"

	"github.com/fsrvpd/fsrvpd/rpc/msdtyp"
)

func mapping(unc, exposed string) *fssagent.ShareMapping {
	return &fssagent.ShareMapping{Value: &fssagent.ShareMapping_1{ShareMapping1: &fssagent.ShareMapping1{
		ShadowCopySetID: msdtyp.GUID(uuid.New()), ShadowCopyID: msdtyp.GUID(uuid.New()),
		ShareNameUNC: unc, ShadowCopyShareName: exposed, CreationTimestamp: 133000000000000000,
	}}}
}

// The responses marshaled here are byte for byte go-msrpc's for ASCII
// names, in NDR20 and NDR64, and go-msrpc's generated code reads them back
// with any name.
func TestWireResponses(t *testing.T) {
	ctx := context.Background()
	type pair struct {
		ours   ndr.Operation
		theirs interface {
			MarshalNDR(context.Context, ndr.Writer) error
		}
		read func([]byte, func([]byte, ...any) ndr.NDR) (string, error) // what a client reads back
	}
	isp := func(owner string) pair {
		r := &fssagent.IsPathSupportedResponse{SupportedByThisProvider: true, OwnerMachineName: owner}
		return pair{isPathSupportedOp{IsPathSupportedResponse: r}, r, func(b []byte, codec func([]byte, ...any) ndr.NDR) (string, error) {
			var got fssagent.IsPathSupportedResponse
			err := got.UnmarshalNDR(ctx, codec(b, ndr.DefaultDataRepresentation))
			return got.OwnerMachineName, err
		}}
	}
	gsm := func(level uint32, m *fssagent.ShareMapping) pair {
		r := &fssagent.GetShareMappingResponse{Level: level, ShareMapping: m, Return: 0}
		return pair{getShareMappingOp{GetShareMappingResponse: r}, r, func(b []byte, codec func([]byte, ...any) ndr.NDR) (string, error) {
			var got fssagent.GetShareMappingResponse
			err := got.UnmarshalNDR(ctx, codec(b, ndr.DefaultDataRepresentation))
			if v, ok := got.ShareMapping.GetValue().(*fssagent.ShareMapping1); ok && v != nil {
				return v.ShareNameUNC + "|" + v.ShadowCopyShareName, err
			}
			return "", err
		}}
	}
	codecs := map[string]func([]byte, ...any) ndr.NDR{"ndr20": ndr.NDR20, "ndr64": ndr.NDR64}
	marshal := func(codec func([]byte, ...any) ndr.NDR, f func(ndr.Writer) error) []byte {
		w := codec(nil, ndr.DefaultDataRepresentation)
		if err := f(w); err != nil {
			t.Fatal(err)
		}
		return w.Bytes()
	}
	for name, c := range map[string]struct {
		p     pair
		ascii bool
		want  string
	}{
		"IsPathSupported":               {isp("FSRVPD"), true, "FSRVPD"},
		"IsPathSupported no owner":      {isp(""), true, ""},
		"IsPathSupported non-ASCII":     {isp("SERVEUR-ÉTÉ"), false, "SERVEUR-ÉTÉ"},
		"GetShareMapping":               {gsm(1, mapping(`\\FSRVPD\share1\`, `\\FSRVPD\share1@{x}`)), true, `\\FSRVPD\share1\|\\FSRVPD\share1@{x}`},
		"GetShareMapping failed":        {gsm(1, nil), true, ""},
		"GetShareMapping other level":   {gsm(2, nil), true, ""},
		"GetShareMapping Latin-1":       {gsm(1, mapping(`\\FSRVPD\Données\`, `\\FSRVPD\Données@{x}`)), false, `\\FSRVPD\Données\|\\FSRVPD\Données@{x}`},
		"GetShareMapping CJK and emoji": {gsm(1, mapping(`\\FSRVPD\資料\`, "\\\\FSRVPD\\\U0001F4BE@{x}")), false, "\\\\FSRVPD\\資料\\|\\\\FSRVPD\\\U0001F4BE@{x}"},
	} {
		for cname, codec := range codecs {
			ours := marshal(codec, func(w ndr.Writer) error { return c.p.ours.MarshalNDRResponse(ctx, w) })
			theirs := marshal(codec, func(w ndr.Writer) error { return c.p.theirs.MarshalNDR(ctx, w) })
			if c.ascii && !bytes.Equal(ours, theirs) {
				t.Errorf("%s %s: ours differs from go-msrpc's:\n% x\n% x", name, cname, ours, theirs)
			}
			if got, err := c.p.read(ours, codec); err != nil || got != c.want {
				t.Errorf("%s %s: read back %q, %v; want %q", name, cname, got, err, c.want)
			}
		}
	}
}
