package client_test

import (
	"context"
	"errors"

	"github.com/fsrvpd/fsrvpd/client/clienttest"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
)

// versionServer claims FSRVP version 2 only.
type versionServer struct{ *clienttest.Fake }

func (versionServer) GetSupportedVersion(context.Context, *fsrvp.GetSupportedVersionRequest) (*fsrvp.GetSupportedVersionResponse, error) {
	return &fsrvp.GetSupportedVersionResponse{MinVersion: 2, MaxVersion: 2}, nil
}

// brokenServer fails GetSupportedVersion the way a runtime fault looks.
type brokenServer struct{ *clienttest.Fake }

func (brokenServer) GetSupportedVersion(context.Context, *fsrvp.GetSupportedVersionRequest) (*fsrvp.GetSupportedVersionResponse, error) {
	return nil, errors.New("nca_op_rng_error")
}

// cancelOn cancels the caller's context during the second AddToShadowCopySet
// and fails that call with the context error.
type cancelOn struct {
	*clienttest.Fake
	op     string
	cancel context.CancelFunc
}

func (c cancelOn) AddToShadowCopySet(ctx context.Context, req *fsrvp.AddToShadowCopySetRequest) (*fsrvp.AddToShadowCopySetResponse, error) {
	if c.Fake.CallCount("AddToShadowCopySet") == 1 {
		c.cancel()
		return nil, context.Canceled
	}
	return c.Fake.AddToShadowCopySet(ctx, req)
}
