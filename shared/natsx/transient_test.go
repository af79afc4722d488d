package natsx

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestTransient: what a forming or recovering cluster answers, and a request that timed out, are
// worth sending again; a refusal that waiting does not change, and a caller's own stop, are not.
func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement, peer offline"}, true},
		{fmt.Errorf("stream X: %w", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}), true},
		{&jetstream.APIError{Code: 500, ErrorCode: 10009, Description: "JetStream cluster can not handle request"}, true},
		{fmt.Errorf("stream X: %w", nats.ErrNoResponders), true},
		{fmt.Errorf("load: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("lease: %w", jetstream.ErrNoStreamResponse), true},
		{nats.ErrTimeout, true},
		{fmt.Errorf("publish: %w", nats.ErrConnectionReconnecting), true},
		{&jetstream.APIError{Code: 400, ErrorCode: 10074, Description: "replicas > 1 not supported in non-clustered mode"}, false},
		{&jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use with a different configuration"}, false},
		{fmt.Errorf("stream X: %w", jetstream.ErrStreamNotFound), false},
		{context.Canceled, false},
		{errors.New("boom"), false},
		{nil, false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestPerRequest: the request context has no deadline (JetStream then gives each request its
// own timeout) but ends when its parent ends.
func TestPerRequest(t *testing.T) {
	parent, cancelParent := context.WithTimeout(context.Background(), time.Hour)
	rctx, cancel := PerRequest(parent)
	defer cancel()
	if _, ok := rctx.Deadline(); ok {
		t.Fatal("the request context has a deadline")
	}
	if rctx.Err() != nil {
		t.Fatal("the request context ended before its parent")
	}
	cancelParent()
	select {
	case <-rctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the request context did not end with its parent")
	}
}
