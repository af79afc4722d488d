package natsx

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream API error codes of refusals that pass by themselves.
const (
	errCodeNoPeers      jetstream.ErrorCode = 10005 // no suitable peers for placement (a peer not seen online yet)
	errCodeNotAvailable jetstream.ErrorCode = 10008 // JetStream system temporarily unavailable
	errCodeNotLeader    jetstream.ErrorCode = 10009 // JetStream cluster can not handle request
)

// Transient reports an error that says NATS could not answer for a moment, not that the request
// was wrong: a request that timed out (the server or the stream's leader did not answer in
// time), no responders (no JetStream meta leader yet, or the server restarting), no response
// from a stream (its leader moving), a connection that is reconnecting, or a JetStream refusal
// that a cluster gives while it forms or loses a node. The same request, sent again a little
// later, can succeed. A caller must tell its own context's end apart first: a request cut short
// because the caller stopped also ends in context.DeadlineExceeded or context.Canceled, and
// context.Canceled is never transient.
//
// On a 3-node cluster with one node stopping or starting, every one of these happens for a few
// seconds (TestClusterNodeLoss, services/jetsuite, found a table loader that stopped its service
// on the timeout of its first stream-info request).
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case errCodeNoPeers, errCodeNotAvailable, errCodeNotLeader:
			return true
		}
		return apiErr.Code == 503
	}
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected)
}

// PerRequest returns a context that ends when ctx ends but has no deadline of its own, so that
// each JetStream request made with it waits the client's own request timeout (5 s), not all of
// what is left of ctx's deadline. On a cluster a request can go unanswered (the stream's leader
// stopped while it was on its way): with a 60 s start-up deadline that one request used the
// whole minute and the start failed; with its own timeout it fails in 5 s, a transient error
// (see Transient) that the caller retries.
func PerRequest(ctx context.Context) (context.Context, context.CancelFunc) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	return rctx, func() { stop(); cancel() }
}
