package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// definition is what JETSUITE_PLAN stores per derived object: the fingerprint of the
// definition its state was built with, and that definition's SQL (to say what changed).
type definition struct {
	Fingerprint string `json:"fingerprint"`
	SQL         string `json:"sql"`
}

// ErrDefinitionChanged is returned (wrapped) when a statement differs from the one its stream
// or table was built with and --rebuild does not name it.
var ErrDefinitionChanged = errors.New("definition changed")

// checkDefinitions compares every derived object's fingerprint with the one stored when its
// state was built (ksqlDB makes users DROP and re-create by hand when a query changes,
// ksql#9332). New objects are recorded. A changed object is refused unless rebuild names it;
// then rebuildObject starts it over and its new fingerprint is stored. Nothing is written
// before every object has been checked, so a refused start changes nothing.
func checkDefinitions(ctx context.Context, js jetstream.JetStream, p *plan.Plan, rebuild []string, o topology.Options) ([]string, error) {
	kv, err := topology.EnsureBucket(ctx, js, topology.Bucket{Name: topology.BucketPlan, State: true,
		Description: "the definition (fingerprint and SQL) each derived stream and table was built with"}, o)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range rebuild {
		obj := p.Object(n)
		switch {
		case obj != nil && obj.Source:
			return nil, fmt.Errorf("--rebuild %s: %s is declared over subject %s, its rows are that subject's; there is nothing to rebuild", n, obj.Name, obj.Subject)
		case obj == nil || obj.Producer == nil:
			return nil, fmt.Errorf("--rebuild %s: no stream or table of the pipeline derives %s", n, n)
		}
		want[obj.Name] = true
	}
	var changed, rebuilt []string
	var writes []*plan.Object
	for _, obj := range p.Objects {
		if obj.Producer == nil || obj.Source {
			continue
		}
		e, err := kv.Get(ctx, obj.Name)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			writes = append(writes, obj)
			continue
		case err != nil:
			return nil, err
		}
		var d definition
		if err := json.Unmarshal(e.Value(), &d); err != nil || d.Fingerprint == obj.Fingerprint {
			if err != nil {
				writes = append(writes, obj)
			}
			continue
		}
		if want[obj.Name] {
			rebuilt = append(rebuilt, obj.Name)
			writes = append(writes, obj)
			continue
		}
		what := "its statement"
		if d.SQL == obj.SQL {
			what = "a stream or table it reads"
		}
		changed = append(changed, fmt.Sprintf("%s (%s changed since it was built:\n    was: %s\n    now: %s)", obj.Name, what, d.SQL, obj.SQL))
	}
	if len(changed) > 0 {
		sort.Strings(changed)
		var names []string
		for _, c := range changed {
			names = append(names, c[:strings.IndexByte(c, ' ')])
		}
		return nil, fmt.Errorf("%w: %s\nrun nothing; pass --rebuild %s to rebuild from the start of their sources",
			ErrDefinitionChanged, strings.Join(changed, "\n  "), strings.Join(names, ","))
	}
	for _, obj := range writes {
		if want[obj.Name] && obj.Bucket != "" {
			if err := windower.RebuildTable(ctx, js, p, obj.Name); err != nil {
				return nil, fmt.Errorf("--rebuild %s: %w", obj.Name, err)
			}
		} else if want[obj.Name] {
			if err := rebuildObject(ctx, js, obj); err != nil {
				return nil, fmt.Errorf("--rebuild %s: %w", obj.Name, err)
			}
		}
		b, _ := json.Marshal(definition{Fingerprint: obj.Fingerprint, SQL: obj.SQL})
		if _, err := kv.Put(ctx, obj.Name, b); err != nil {
			return nil, err
		}
	}
	return rebuilt, nil
}

// rebuildObject starts a derived stream over: its messages are purged, and every processor
// that reads the step's input forgets its checkpoint on it, so it reads that input again from
// the start. The step finds its output empty and produces everything again; the processor's
// other outputs are untouched (shared/flow skips outputs a derived stream already holds).
// Aggregations are rebuilt by windower.RebuildTable; tables loaded from a topic are refused.
func rebuildObject(ctx context.Context, js jetstream.JetStream, obj *plan.Object) error {
	input := obj.Producer.Input.Stream
	cps, err := js.KeyValue(ctx, topology.BucketCheckpoints)
	if err != nil {
		return err
	}
	var forget []string
	err = kvx.Load(ctx, js, topology.BucketCheckpoints, "", func(e jetstream.KeyValueEntry) error {
		var cp struct {
			Stream string `json:"stream"`
		}
		if json.Unmarshal(e.Value(), &cp) == nil && cp.Stream == input {
			forget = append(forget, e.Key())
		}
		return nil
	})
	if err != nil {
		return err
	}
	s, err := js.Stream(ctx, obj.Stream)
	if err != nil {
		return err
	}
	if err := s.Purge(ctx); err != nil {
		return err
	}
	for _, k := range forget {
		if err := cps.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}
