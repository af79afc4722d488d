package plan

// Fuse chains the stateless statements into the aggregations that read their outputs, as
// Flink chains operators that need no network hop into one task, and returns p. For every
// source stream that an aggregation reads, directly or through streams derived from it by
// CREATE STREAM ... AS SELECT (one or several in a row), the windower's task on that source
// runs all of the source's stateless statements itself: it evaluates each on the source's
// messages, in the source's order, publishes its output stream as the enricher would (same
// rows, same keys, same event times) and feeds the rows straight to the aggregations instead
// of reading the derived stream back. Each click is then delivered once instead of once per
// derived stream plus once to the enricher.
//
// Fused Transform steps move to ServiceWindower and, like the aggregations over their
// outputs, name their task's source in FusedFrom. Sources in DEBEZIUM_JSON are not fused (the
// windower reads plain JSON rows). The enricher keeps the tables it loads and the statements
// no aggregation depends on.
func (p *Plan) Fuse() *Plan {
	if p.Fused {
		return p
	}
	aggregated := map[*Object]bool{}
	for _, st := range p.Steps {
		if st.Kind == Aggregate && !st.TableInput && st.Input.Stream != "" {
			if r := RootOf(st.Input); r.Stream != "" && r.Format != FormatDebeziumJSON {
				aggregated[r] = true
			}
		}
	}
	for _, st := range p.Steps {
		switch {
		case st.Kind == Transform && aggregated[RootOf(st.Input)]:
			st.Service, st.FusedFrom = ServiceWindower, RootOf(st.Input)
		case st.Kind == Aggregate && !st.TableInput && st.Input.Producer != nil && st.Input.Producer.Kind == Transform && aggregated[RootOf(st.Input)]:
			st.FusedFrom = RootOf(st.Input)
		}
	}
	p.Fused = true
	return p
}

// RootOf is the stream o derives from through stateless statements (CREATE STREAM ... AS
// SELECT, one or several in a row): o itself when no statement derives it.
func RootOf(o *Object) *Object {
	for o.Producer != nil && o.Producer.Kind == Transform {
		o = o.Producer.Input
	}
	return o
}
