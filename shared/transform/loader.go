package transform

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/plan"
)

// WaitLoader returns once a table that the enricher loads from a topic holds what the topic
// held when WaitLoader was called (the loader's checkpoint has reached it), so that a join's
// first inputs see those rows, as ksqlDB's would with auto.offset.reset=earliest. It reads the
// loader's checkpoint rather than asking the loader, so it works in whichever instance the
// loader runs (shared/lease). Tables written by others (the CDC reader, aggregations) are
// read as they are: it returns at once. It returns ctx's error if ctx ends first.
func WaitLoader(ctx context.Context, js jetstream.JetStream, o *plan.Object, log *slog.Logger) error {
	st := o.Producer
	if st == nil || st.Kind != plan.Load || st.Service != plan.ServiceEnricher {
		return nil
	}
	src, err := js.Stream(ctx, st.Input.Stream)
	if err != nil {
		return nil // no source stream: nothing to wait for
	}
	state := src.CachedInfo().State
	if state.Msgs == 0 {
		return nil
	}
	key := plan.Durable(plan.ServiceEnricher, o.Name)
	logged := false
	for {
		cp, err := flow.Checkpoint(ctx, js, key, st.Input.Stream)
		if err == nil && cp >= state.LastSeq {
			return nil
		}
		if !logged {
			log.Info("waiting for the enricher to load a table the statements join", "table", o.Name, "source", st.Input.Stream, "up_to_seq", state.LastSeq)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
