package sqlrt

import (
	"slices"
	"strings"

	"github.com/jetsuite/jetsuite/shared/ksql"
)

// IsAggregate reports whether name (any case) is an aggregate function.
func IsAggregate(name string) bool {
	_, ok := slices.BinarySearch(AggregateNames(), strings.ToUpper(name))
	return ok
}

// CompileAggregate compiles an aggregate call: its arguments against scope (the input row)
// and its accumulator. overTable says the input is a TABLE (rows change and go): the
// accumulators then undo where they can (NewTableAccumulatorFunc), and Aggregate.CanUndo says
// whether this one can (the planner refuses the others there).
func CompileAggregate(call *ksql.FuncCall, scope Scope, overTable bool) (Aggregate, error) {
	name := strings.ToUpper(call.Name)
	a := Aggregate{Name: name, Text: call.String()}
	if call.Star && name != "COUNT" {
		return a, typeErr(call, name+"(*) is not allowed; only COUNT(*) takes *", "")
	}
	c := &compiler{scope: scope}
	var types []Type
	for _, arg := range call.Args {
		if f, ok := arg.(*ksql.FuncCall); ok && IsAggregate(f.Name) {
			return a, typeErr(f, "aggregate "+f.Name+" inside aggregate "+name+" is not allowed", "")
		}
		x, err := c.expr(arg)
		if err != nil {
			return a, err
		}
		a.Args = append(a.Args, x)
		types = append(types, x.Type)
	}
	accFunc := NewAccumulatorFunc
	if overTable {
		accFunc = NewTableAccumulatorFunc
	}
	newAcc, result, canUndo, err := accFunc(name, types)
	if err != nil {
		return a, typeErr(call, err.Error(), "")
	}
	a.New, a.Type, a.CanUndo = newAcc, result, canUndo
	return a, nil
}
