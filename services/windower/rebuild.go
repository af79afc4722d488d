package windower

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// ownKey marks, in WINDOWER_STATE, a table that runs in a task of its own since it was rebuilt.
func ownKey(table string) string { return "_own." + table }

// RebuildTable starts aggregation name of p over from the start of its source: its rows, its
// window state and its input rows are deleted, and the table is marked to run in a task of its
// own (consumer windower-<SOURCE>-<TABLE>, progress _progress.<SOURCE>-<TABLE>), which reads
// the source from its first message while the source's other tables go on where they are.
// The windower must not be running. Rebuilding the same table again starts its own task over.
func RebuildTable(ctx context.Context, js jetstream.JetStream, p *plan.Plan, name string) error {
	var t *Table
	for _, x := range Tables(p) {
		if x.Name == strings.ToUpper(name) {
			t = &x
			break
		}
	}
	if t == nil {
		return fmt.Errorf("%s is no aggregation of the pipeline", name)
	}
	state, err := js.KeyValue(ctx, topology.BucketWindowerState)
	if err != nil {
		return err
	}
	var keys []string
	for _, prefix := range []string{t.Name + ".", "_rows." + t.Name + "."} {
		err := kvx.Load(ctx, js, topology.BucketWindowerState, prefix+">", func(e jetstream.KeyValueEntry) error {
			keys = append(keys, e.Key())
			return nil
		})
		if err != nil {
			return err
		}
	}
	own := t.Source + "-" + t.Name
	keys = append(keys, progressKey(own))
	// Partitioned, the own task has a progress record, a checkpoint and a consumer per
	// partition (of whatever count built them): "<key>.p<n>", "windower-<own>-p<n>".
	err = kvx.Load(ctx, js, topology.BucketWindowerState, progressKey(own)+".>", func(e jetstream.KeyValueEntry) error {
		keys = append(keys, e.Key())
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := state.Purge(ctx, k); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
	}
	durables := []string{"windower-" + own}
	src, err := js.Stream(ctx, t.Source)
	if err != nil {
		return err
	}
	names := src.ConsumerNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(name, "windower-"+own+"-p") {
			durables = append(durables, name)
		}
	}
	if err := names.Err(); err != nil {
		return err
	}
	cps, err := js.KeyValue(ctx, topology.BucketCheckpoints)
	if err != nil {
		return err
	}
	for _, d := range durables {
		if err := cps.Purge(ctx, d); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
		if err := js.DeleteConsumer(ctx, t.Source, d); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
	}
	rows, err := js.Stream(ctx, "KV_"+t.Step.Output.Bucket)
	if err != nil {
		return err
	}
	if err := rows.Purge(ctx); err != nil {
		return err
	}
	_, err = state.PutString(ctx, ownKey(t.Name), "rebuilt: reads "+t.Source+" in a task of its own")
	return err
}
