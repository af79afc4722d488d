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
// and its accumulator. Aggregate.CanUndo says whether it may run over a TABLE (the planner
// refuses the others there).
func CompileAggregate(call *ksql.FuncCall, scope Scope) (Aggregate, error) {
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
	newAcc, result, canUndo, err := NewAccumulatorFunc(name, types)
	if err != nil {
		return a, typeErr(call, err.Error(), "")
	}
	a.New, a.Type, a.CanUndo = newAcc, result, canUndo
	return a, nil
}
