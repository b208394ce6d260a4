package ntlm

import (
	"context"
	"errors"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// Chain returns a Verifier that asks each of vs in turn until one accepts
// the response or fails with an error other than rpc.ErrAuthFailed. With
// one Verifier it returns it.
func Chain(vs ...Verifier) Verifier {
	if len(vs) == 1 {
		return vs[0]
	}
	return chain(vs)
}

type chain []Verifier

func (c chain) Verify(ctx context.Context, r *Response) (*rpc.Identity, []byte, error) {
	err := error(rpc.ErrAuthFailed)
	for _, v := range c {
		var id *rpc.Identity
		var key []byte
		id, key, err = v.Verify(ctx, r)
		if err == nil || !errors.Is(err, rpc.ErrAuthFailed) {
			return id, key, err
		}
	}
	return nil, nil, err
}
