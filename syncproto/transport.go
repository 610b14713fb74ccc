package syncproto

import (
	"context"
	"slices"
)

// Transport carries one encoded request to a server and brings back its
// encoded response. Working on bytes keeps the byte counts exact and lets
// the HTTP transport (POST the request, read the response) sign and limit
// what really crosses the wire. Implementations must be safe for
// concurrent use if the Syncer is used concurrently.
type Transport interface {
	RoundTrip(ctx context.Context, req []byte) (resp []byte, err error)
}

// TransportFunc adapts a function to Transport.
type TransportFunc func(ctx context.Context, req []byte) ([]byte, error)

// RoundTrip calls f.
func (f TransportFunc) RoundTrip(ctx context.Context, req []byte) ([]byte, error) {
	return f(ctx, req)
}

// Loopback returns an in-memory Transport to a Responder. It copies the
// bytes each way, so neither side can see the other's buffers.
func Loopback(s *Responder) Transport {
	return TransportFunc(func(ctx context.Context, req []byte) ([]byte, error) {
		resp, err := s.HandleMessage(ctx, slices.Clone(req))
		return slices.Clone(resp), err
	})
}
