package ksql

// Expression grammar, lowest precedence first:
//
//	expr       = and { OR and }
//	and        = not { AND not }
//	not        = NOT not | predicate
//	predicate  = additive [ cmpOp additive
//	                      | [NOT] LIKE additive
//	                      | [NOT] IN ( expr {, expr} )
//	                      | [NOT] BETWEEN additive AND additive
//	                      | IS [NOT] NULL ]
//	additive   = mult { (+|-) mult }
//	mult       = unary { (*|/|%) unary }
//	unary      = (-|+) unary | postfix
//	postfix    = primary { -> name | [ expr ] }

func (p *parser) expr() (Expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.acceptKw("OR") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &BinaryExpr{Op: "OR", Left: l, Right: r}
	}
	return l, nil
}

func (p *parser) and() (Expr, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.acceptKw("AND") {
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = &BinaryExpr{Op: "AND", Left: l, Right: r}
	}
	return l, nil
}

func (p *parser) not() (Expr, error) {
	if p.acceptKw("NOT") {
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return &UnaryExpr{Op: "NOT", X: x}, nil
	}
	return p.predicate()
}

var cmpOps = map[string]bool{"=": true, "<>": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

func (p *parser) predicate() (Expr, error) {
	x, err := p.additive()
	if err != nil {
		return nil, err
	}
	t := p.tok()
	if t.Kind == Op && cmpOps[t.Value] {
		p.next()
		r, err := p.additive()
		if err != nil {
			return nil, err
		}
		return &BinaryExpr{Op: t.Value, Left: x, Right: r}, nil
	}
	if isKw(t, "IS") {
		p.next()
		not := p.acceptKw("NOT")
		if err := p.expectKw("NULL", "NULL after IS"); err != nil {
			return nil, err
		}
		return &IsNullExpr{X: x, Not: not}, nil
	}
	not := false
	if isKw(t, "NOT") && (isKw(p.peekN(1), "LIKE") || isKw(p.peekN(1), "IN") || isKw(p.peekN(1), "BETWEEN")) {
		p.next()
		not = true
		t = p.tok()
	}
	switch {
	case isKw(t, "LIKE"):
		p.next()
		pat, err := p.additive()
		if err != nil {
			return nil, err
		}
		if isKw(p.tok(), "ESCAPE") {
			return nil, p.unsupported(p.tok(), "LIKE ... ESCAPE", "match with the default '%' and '_' wildcards")
		}
		return &LikeExpr{X: x, Pattern: pat, Not: not}, nil
	case isKw(t, "IN"):
		p.next()
		if err := p.expectOp("(", "'(' after IN"); err != nil {
			return nil, err
		}
		list, err := p.exprList()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(")", "')' after IN list"); err != nil {
			return nil, err
		}
		return &InExpr{X: x, List: list, Not: not}, nil
	case isKw(t, "BETWEEN"):
		p.next()
		lo, err := p.additive()
		if err != nil {
			return nil, err
		}
		if err := p.expectKw("AND", "AND in BETWEEN"); err != nil {
			return nil, err
		}
		hi, err := p.additive()
		if err != nil {
			return nil, err
		}
		return &BetweenExpr{X: x, Lo: lo, Hi: hi, Not: not}, nil
	}
	return x, nil
}

func (p *parser) additive() (Expr, error) {
	l, err := p.mult()
	if err != nil {
		return nil, err
	}
	for isOp(p.tok(), "+") || isOp(p.tok(), "-") {
		op := p.next().Value
		r, err := p.mult()
		if err != nil {
			return nil, err
		}
		l = &BinaryExpr{Op: op, Left: l, Right: r}
	}
	return l, nil
}

func (p *parser) mult() (Expr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for isOp(p.tok(), "*") || isOp(p.tok(), "/") || isOp(p.tok(), "%") {
		op := p.next().Value
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &BinaryExpr{Op: op, Left: l, Right: r}
	}
	return l, nil
}

func (p *parser) unary() (Expr, error) {
	if isOp(p.tok(), "-") || isOp(p.tok(), "+") {
		op := p.next().Value
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &UnaryExpr{Op: op, X: x}, nil
	}
	return p.postfix()
}

func (p *parser) postfix() (Expr, error) {
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.acceptOp("->"):
			f, err := p.columnName("field name after '->'")
			if err != nil {
				return nil, err
			}
			x = &Dereference{X: x, Field: f}
		case p.acceptOp("["):
			idx, err := p.expr()
			if err != nil {
				return nil, err
			}
			if err := p.expectOp("]", "']' after subscript"); err != nil {
				return nil, err
			}
			x = &Subscript{X: x, Index: idx}
		default:
			return x, nil
		}
	}
}

func (p *parser) primary() (Expr, error) {
	t := p.tok()
	switch t.Kind {
	case String, Integer, Decimal, Double:
		return p.literal("literal")
	case Op:
		if t.Value == "(" {
			p.next()
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			if err := p.expectOp(")", "')' to close '('"); err != nil {
				return nil, err
			}
			return e, nil
		}
		return nil, p.errExpected("expression")
	case QIdent:
		return p.name()
	case Ident:
		switch t.Value {
		case "NULL":
			p.next()
			return &NullLit{}, nil
		case "TRUE", "FALSE":
			return p.literal("literal")
		case "CASE":
			return p.caseExpr()
		case "CAST":
			p.next()
			if err := p.expectOp("(", "'(' after CAST"); err != nil {
				return nil, err
			}
			x, err := p.expr()
			if err != nil {
				return nil, err
			}
			if err := p.expectKw("AS", "AS in CAST(expr AS type)"); err != nil {
				return nil, err
			}
			ty, err := p.typ()
			if err != nil {
				return nil, err
			}
			if err := p.expectOp(")", "')' after CAST type"); err != nil {
				return nil, err
			}
			return &CastExpr{X: x, Type: ty}, nil
		case "ARRAY", "MAP", "STRUCT":
			if n := p.peekN(1); isOp(n, "[") || isOp(n, "(") {
				return nil, p.unsupported(t, t.Value+" constructor", "build the value in a function")
			}
		}
		if reserved[t.Value] {
			return nil, p.errExpected("expression")
		}
		return p.name()
	}
	return nil, p.errExpected("expression")
}

// name parses a column reference t.a / a or a function call f(...).
func (p *parser) name() (Expr, error) {
	t := p.next()
	if isOp(p.tok(), "(") && t.Kind == Ident {
		p.next()
		f := &FuncCall{Name: t.Value, Pos: Pos{t.Line, t.Col}}
		if p.acceptOp("*") {
			f.Star = true
		} else if !isOp(p.tok(), ")") {
			if isKw(p.tok(), "DISTINCT") {
				return nil, p.unsupported(p.tok(), "DISTINCT in a function call", "use COUNT_DISTINCT")
			}
			args, err := p.exprList()
			if err != nil {
				return nil, err
			}
			f.Args = args
		}
		if err := p.expectOp(")", "')' after arguments of "+t.Value); err != nil {
			return nil, err
		}
		return f, nil
	}
	if p.acceptOp(".") {
		n, err := p.columnName("column name after '" + t.Text + ".'")
		if err != nil {
			return nil, err
		}
		return &ColumnRef{Qualifier: t.Value, Name: n, Pos: Pos{t.Line, t.Col}}, nil
	}
	return &ColumnRef{Name: t.Value, Pos: Pos{t.Line, t.Col}}, nil
}

func (p *parser) caseExpr() (Expr, error) {
	p.next() // CASE
	c := &CaseExpr{}
	var err error
	if !isKw(p.tok(), "WHEN") {
		if c.Operand, err = p.expr(); err != nil {
			return nil, err
		}
	}
	for p.acceptKw("WHEN") {
		var w When
		if w.Cond, err = p.expr(); err != nil {
			return nil, err
		}
		if err := p.expectKw("THEN", "THEN after WHEN condition"); err != nil {
			return nil, err
		}
		if w.Result, err = p.expr(); err != nil {
			return nil, err
		}
		c.Whens = append(c.Whens, w)
	}
	if len(c.Whens) == 0 {
		return nil, p.errExpected("WHEN in CASE")
	}
	if p.acceptKw("ELSE") {
		if c.Else, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if err := p.expectKw("END", "END to close CASE"); err != nil {
		return nil, err
	}
	return c, nil
}
