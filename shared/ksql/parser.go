package ksql

import (
	"strconv"
	"strings"
)

// reserved words cannot be used as bare column names, aliases or source
// names; the printer back-quotes identifiers that collide with them.
var reserved = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`SELECT FROM WHERE GROUP BY HAVING WINDOW PARTITION EMIT LIMIT
		JOIN LEFT RIGHT FULL INNER OUTER ON AS AND OR NOT LIKE IN BETWEEN IS NULL TRUE FALSE
		CASE WHEN THEN ELSE END WITH CREATE DROP INSERT INTO SET WITHIN CAST`) {
		reserved[w] = true
	}
}

// Parse parses a script of ';'-terminated statements. file is used only
// in error messages.
func Parse(file, src string) ([]Statement, error) {
	p, err := newParser(file, src)
	if err != nil {
		return nil, err
	}
	var out []Statement
	for {
		for p.acceptOp(";") {
		}
		if p.tok().Kind == EOF {
			return out, nil
		}
		s, err := p.statement()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(";", "';' after statement"); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
}

// ParseStatement parses exactly one statement; the final ';' is optional.
func ParseStatement(src string) (Statement, error) {
	p, err := newParser("", src)
	if err != nil {
		return nil, err
	}
	s, err := p.statement()
	if err != nil {
		return nil, err
	}
	p.acceptOp(";")
	if p.tok().Kind != EOF {
		return nil, p.errExpected("end of statement")
	}
	return s, nil
}

// ParseExpr parses a single expression.
func ParseExpr(src string) (Expr, error) {
	p, err := newParser("", src)
	if err != nil {
		return nil, err
	}
	e, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.tok().Kind != EOF {
		return nil, p.errExpected("end of expression")
	}
	return e, nil
}

type parser struct {
	file string
	toks []Token
	i    int
}

func newParser(file, src string) (*parser, error) {
	toks, err := Lex(file, src)
	if err != nil {
		return nil, err
	}
	return &parser{file: file, toks: toks}, nil
}

func (p *parser) tok() Token { return p.toks[p.i] }

func (p *parser) peekN(n int) Token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() Token {
	t := p.toks[p.i]
	if t.Kind != EOF {
		p.i++
	}
	return t
}

func isKw(t Token, kw string) bool { return t.Kind == Ident && t.Value == kw }
func isOp(t Token, op string) bool { return t.Kind == Op && t.Value == op }

func (p *parser) acceptKw(kw string) bool {
	if isKw(p.tok(), kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) acceptOp(op string) bool {
	if isOp(p.tok(), op) {
		p.i++
		return true
	}
	return false
}

func (p *parser) errAt(t Token, expected string) *SyntaxError {
	return &SyntaxError{File: p.file, Line: t.Line, Col: t.Col, Token: t.describe(), Expected: expected}
}

func (p *parser) errExpected(expected string) *SyntaxError { return p.errAt(p.tok(), expected) }

func (p *parser) unsupported(t Token, what, hint string) *SyntaxError {
	return &SyntaxError{File: p.file, Line: t.Line, Col: t.Col, Token: t.describe(),
		Msg: what + " is not supported", Hint: hint, Unsupported: true}
}

func (p *parser) expectKw(kw, context string) error {
	if p.acceptKw(kw) {
		return nil
	}
	return p.errExpected(context)
}

func (p *parser) expectOp(op, context string) error {
	if p.acceptOp(op) {
		return nil
	}
	return p.errExpected(context)
}

// ident reads an identifier; reserved words are refused unless quoted.
func (p *parser) ident(context string) (string, error) {
	t := p.tok()
	if t.Kind == QIdent || (t.Kind == Ident && !reserved[t.Value]) {
		p.i++
		return t.Value, nil
	}
	return "", p.errExpected(context)
}

func (p *parser) statement() (Statement, error) {
	t := p.tok()
	pos := Pos{t.Line, t.Col}
	if t.Kind != Ident {
		return nil, p.errExpected("statement (CREATE, DROP, INSERT, SELECT or SET)")
	}
	switch t.Value {
	case "SET":
		p.next()
		k := p.tok()
		if k.Kind != String {
			return nil, p.errExpected("quoted property name after SET")
		}
		p.next()
		if err := p.expectOp("=", "'=' after property name"); err != nil {
			return nil, err
		}
		v := p.tok()
		if v.Kind != String {
			return nil, p.errExpected("quoted property value")
		}
		p.next()
		return &SetStmt{Pos: pos, Key: k.Value, Value: v.Value}, nil
	case "CREATE":
		return p.create(pos)
	case "DROP":
		return p.drop(pos)
	case "INSERT":
		return p.insert(pos)
	case "SELECT":
		q, err := p.query()
		if err != nil {
			return nil, err
		}
		return &QueryStmt{Pos: pos, Query: q}, nil
	case "UNSET":
		return nil, p.unsupported(t, "UNSET", "set the property in the pipeline configuration instead")
	case "PRINT":
		return nil, p.unsupported(t, "PRINT", "PRINT is an interactive command; read the subject with the NATS CLI")
	case "SHOW", "LIST", "DESCRIBE", "EXPLAIN":
		return nil, p.unsupported(t, t.Value, "it is an interactive command, not part of a pipeline")
	case "TERMINATE", "PAUSE", "RESUME":
		return nil, p.unsupported(t, t.Value, "queries are started and stopped by deploying the plan")
	case "DEFINE", "UNDEFINE":
		return nil, p.unsupported(t, "variable substitution ("+t.Value+")", "substitute variables before parsing")
	case "ALTER":
		return nil, p.unsupported(t, "ALTER", "drop and re-create the source")
	case "ASSERT":
		return nil, p.unsupported(t, "ASSERT", "assertions belong in the tests")
	case "RUN":
		return nil, p.unsupported(t, "RUN SCRIPT", "pass every file to the compiler instead")
	}
	return nil, p.errExpected("statement (CREATE, DROP, INSERT, SELECT or SET)")
}

func (p *parser) create(pos Pos) (Statement, error) {
	p.next() // CREATE
	orReplace := false
	if p.acceptKw("OR") {
		if err := p.expectKw("REPLACE", "REPLACE after CREATE OR"); err != nil {
			return nil, err
		}
		orReplace = true
	}
	t := p.tok()
	switch {
	case isKw(t, "STREAM"), isKw(t, "TABLE"):
		p.next()
		return p.createSource(pos, SourceKind(t.Value), orReplace)
	case (isKw(t, "SINK") || isKw(t, "SOURCE")) && isKw(p.peekN(1), "CONNECTOR"):
		if orReplace {
			return nil, p.unsupported(t, "CREATE OR REPLACE CONNECTOR", "drop the connector and create it again")
		}
		p.next()
		p.next()
		return p.createConnector(pos, ConnectorKind(t.Value))
	case isKw(t, "SOURCE") && (isKw(p.peekN(1), "STREAM") || isKw(p.peekN(1), "TABLE")):
		return nil, p.unsupported(t, "CREATE SOURCE "+p.peekN(1).Value, "declare it with CREATE "+p.peekN(1).Value)
	case isKw(t, "TYPE"):
		return nil, p.unsupported(t, "CREATE TYPE", "spell the STRUCT type out in the column list")
	case isKw(t, "FUNCTION"), isKw(t, "AGGREGATE"):
		return nil, p.unsupported(t, "CREATE "+t.Value, "user-defined functions are registered in Go")
	}
	return nil, p.errExpected("STREAM, TABLE, SINK CONNECTOR or SOURCE CONNECTOR after CREATE")
}

func (p *parser) ifNotExists() (bool, error) {
	if !p.acceptKw("IF") {
		return false, nil
	}
	if err := p.expectKw("NOT", "NOT after IF"); err != nil {
		return false, err
	}
	if err := p.expectKw("EXISTS", "EXISTS after IF NOT"); err != nil {
		return false, err
	}
	return true, nil
}

func (p *parser) createSource(pos Pos, kind SourceKind, orReplace bool) (Statement, error) {
	ine, err := p.ifNotExists()
	if err != nil {
		return nil, err
	}
	name, err := p.ident("name of the " + strings.ToLower(string(kind)))
	if err != nil {
		return nil, err
	}
	if p.acceptOp("(") {
		cs := &CreateSource{Pos: pos, Kind: kind, OrReplace: orReplace, IfNotExists: ine, Name: name}
		for {
			c, err := p.columnDef(kind)
			if err != nil {
				return nil, err
			}
			cs.Columns = append(cs.Columns, c)
			if !p.acceptOp(",") {
				break
			}
		}
		if err := p.expectOp(")", "')' after column list"); err != nil {
			return nil, err
		}
		if p.acceptKw("WITH") {
			if cs.With, err = p.properties(false); err != nil {
				return nil, err
			}
		}
		if isKw(p.tok(), "AS") {
			return nil, p.errExpected("';' after CREATE " + string(kind) + " with a column list (AS SELECT takes no columns)")
		}
		return cs, nil
	}
	cas := &CreateAsSelect{Pos: pos, Kind: kind, OrReplace: orReplace, IfNotExists: ine, Name: name}
	if p.acceptKw("WITH") {
		if cas.With, err = p.properties(false); err != nil {
			return nil, err
		}
	}
	if !p.acceptKw("AS") {
		if cas.With != nil {
			return nil, p.errExpected("AS SELECT after WITH (...)")
		}
		return nil, p.errExpected("'(' column list, WITH or AS after " + string(kind) + " name")
	}
	if !isKw(p.tok(), "SELECT") {
		return nil, p.errExpected("SELECT after AS")
	}
	if cas.Query, err = p.query(); err != nil {
		return nil, err
	}
	return cas, nil
}

func (p *parser) columnDef(kind SourceKind) (ColumnDef, error) {
	name, err := p.columnName("column name")
	if err != nil {
		return ColumnDef{}, err
	}
	typ, err := p.typ()
	if err != nil {
		return ColumnDef{}, err
	}
	c := ColumnDef{Name: name, Type: typ}
	switch {
	case isKw(p.tok(), "PRIMARY"):
		t := p.next()
		if err := p.expectKw("KEY", "KEY after PRIMARY"); err != nil {
			return c, err
		}
		if kind == Stream {
			return c, &SyntaxError{File: p.file, Line: t.Line, Col: t.Col, Token: t.describe(),
				Msg: "PRIMARY KEY is for tables", Hint: "a stream column is declared KEY"}
		}
		c.PrimaryKey = true
	case isKw(p.tok(), "KEY"):
		t := p.next()
		if kind == Table {
			return c, &SyntaxError{File: p.file, Line: t.Line, Col: t.Col, Token: t.describe(),
				Msg: "KEY is for streams", Hint: "a table column is declared PRIMARY KEY"}
		}
		c.Key = true
	case isKw(p.tok(), "HEADERS"), isKw(p.tok(), "HEADER"):
		return c, p.unsupported(p.tok(), "header columns", "carry the value in the message body")
	}
	return c, nil
}

// columnName accepts any identifier, reserved or not, where only a name
// can appear (column and field definitions).
func (p *parser) columnName(context string) (string, error) {
	t := p.tok()
	if t.Kind == Ident || t.Kind == QIdent {
		p.i++
		return t.Value, nil
	}
	return "", p.errExpected(context)
}

var simpleTypes = map[string]bool{
	"INT": true, "INTEGER": true, "BIGINT": true, "DOUBLE": true, "BOOLEAN": true,
	"VARCHAR": true, "STRING": true, "BYTES": true, "TIMESTAMP": true, "DATE": true, "TIME": true,
}

func (p *parser) typ() (*Type, error) {
	t := p.tok()
	if t.Kind != Ident {
		return nil, p.errExpected("type")
	}
	p.next()
	switch t.Value {
	case "DECIMAL":
		ty := &Type{Name: "DECIMAL"}
		if err := p.expectOp("(", "'(' after DECIMAL"); err != nil {
			return nil, err
		}
		for k := 0; k < 2; k++ {
			n := p.tok()
			if n.Kind != Integer {
				return nil, p.errExpected("integer precision and scale in DECIMAL(p, s)")
			}
			p.next()
			v, _ := strconv.Atoi(n.Value)
			ty.Params = append(ty.Params, v)
			if k == 0 {
				if err := p.expectOp(",", "',' between DECIMAL precision and scale"); err != nil {
					return nil, err
				}
			}
		}
		if err := p.expectOp(")", "')' after DECIMAL(p, s"); err != nil {
			return nil, err
		}
		return ty, nil
	case "ARRAY":
		if err := p.expectOp("<", "'<' after ARRAY"); err != nil {
			return nil, err
		}
		el, err := p.typ()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(">", "'>' after ARRAY element type"); err != nil {
			return nil, err
		}
		return &Type{Name: "ARRAY", Elem: el}, nil
	case "MAP":
		if err := p.expectOp("<", "'<' after MAP"); err != nil {
			return nil, err
		}
		k, err := p.typ()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(",", "',' after MAP key type"); err != nil {
			return nil, err
		}
		v, err := p.typ()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(">", "'>' after MAP value type"); err != nil {
			return nil, err
		}
		return &Type{Name: "MAP", Key: k, Value: v}, nil
	case "STRUCT":
		if err := p.expectOp("<", "'<' after STRUCT"); err != nil {
			return nil, err
		}
		ty := &Type{Name: "STRUCT"}
		if p.acceptOp(">") {
			return ty, nil
		}
		for {
			n, err := p.columnName("STRUCT field name")
			if err != nil {
				return nil, err
			}
			ft, err := p.typ()
			if err != nil {
				return nil, err
			}
			ty.Fields = append(ty.Fields, FieldDef{Name: n, Type: ft})
			if !p.acceptOp(",") {
				break
			}
		}
		if err := p.expectOp(">", "'>' after STRUCT fields"); err != nil {
			return nil, err
		}
		return ty, nil
	}
	if simpleTypes[t.Value] {
		return &Type{Name: t.Value}, nil
	}
	p.i--
	return nil, p.errExpected("type (INT, BIGINT, DOUBLE, DECIMAL, BOOLEAN, VARCHAR, STRING, BYTES, TIMESTAMP, DATE, TIME, ARRAY, MAP or STRUCT)")
}

// properties parses (k = v, ...) after WITH. Connector keys are string
// literals; source keys are identifiers.
func (p *parser) properties(connector bool) ([]Property, error) {
	if err := p.expectOp("(", "'(' after WITH"); err != nil {
		return nil, err
	}
	var props []Property
	for {
		t := p.tok()
		var key string
		switch {
		case connector && t.Kind == String:
			key = t.Value
		case !connector && (t.Kind == Ident || t.Kind == QIdent):
			key = t.Value
		case connector:
			return nil, p.errExpected("quoted property name")
		default:
			return nil, p.errExpected("property name")
		}
		p.next()
		if err := p.expectOp("=", "'=' after property "+key); err != nil {
			return nil, err
		}
		v, err := p.literal("value for property " + key)
		if err != nil {
			return nil, err
		}
		props = append(props, Property{Key: key, Value: v})
		if !p.acceptOp(",") {
			break
		}
	}
	if err := p.expectOp(")", "')' after WITH properties"); err != nil {
		return nil, err
	}
	return props, nil
}

func (p *parser) literal(context string) (Expr, error) {
	t := p.tok()
	if isOp(t, "-") {
		// A negative number (ksqlDB's grammar allows one: RETENTION_MS=-1, Kafka's "no
		// limit").
		if n := p.peekN(1); n.Kind == Integer || n.Kind == Decimal || n.Kind == Double {
			p.next()
			p.next()
			return &NumberLit{Text: "-" + n.Value, Kind: n.Kind}, nil
		}
	}
	switch {
	case t.Kind == String:
		p.next()
		return &StringLit{Value: t.Value}, nil
	case t.Kind == Integer || t.Kind == Decimal || t.Kind == Double:
		p.next()
		return &NumberLit{Text: t.Value, Kind: t.Kind}, nil
	case isKw(t, "TRUE"), isKw(t, "FALSE"):
		p.next()
		return &BoolLit{Value: t.Value == "TRUE"}, nil
	}
	return nil, p.errExpected(context)
}

func (p *parser) createConnector(pos Pos, kind ConnectorKind) (Statement, error) {
	ine, err := p.ifNotExists()
	if err != nil {
		return nil, err
	}
	name, err := p.ident("connector name")
	if err != nil {
		return nil, err
	}
	c := &CreateConnector{Pos: pos, Kind: kind, IfNotExists: ine, Name: name}
	if err := p.expectKw("WITH", "WITH after connector name"); err != nil {
		return nil, err
	}
	if c.With, err = p.properties(true); err != nil {
		return nil, err
	}
	return c, nil
}

func (p *parser) drop(pos Pos) (Statement, error) {
	p.next() // DROP
	t := p.tok()
	if isKw(t, "TYPE") || isKw(t, "CONNECTOR") {
		return nil, p.unsupported(t, "DROP "+t.Value, "remove the CREATE statement from the pipeline")
	}
	if !isKw(t, "STREAM") && !isKw(t, "TABLE") {
		return nil, p.errExpected("STREAM or TABLE after DROP")
	}
	p.next()
	d := &DropStmt{Pos: pos, Kind: SourceKind(t.Value)}
	if p.acceptKw("IF") {
		if err := p.expectKw("EXISTS", "EXISTS after IF"); err != nil {
			return nil, err
		}
		d.IfExists = true
	}
	var err error
	if d.Name, err = p.ident("name of the " + strings.ToLower(t.Value) + " to drop"); err != nil {
		return nil, err
	}
	if p.acceptKw("DELETE") {
		if err := p.expectKw("TOPIC", "TOPIC after DELETE"); err != nil {
			return nil, err
		}
		d.DeleteTopic = true
	}
	return d, nil
}

func (p *parser) insert(pos Pos) (Statement, error) {
	p.next() // INSERT
	if err := p.expectKw("INTO", "INTO after INSERT"); err != nil {
		return nil, err
	}
	name, err := p.ident("target stream name after INSERT INTO")
	if err != nil {
		return nil, err
	}
	if t := p.tok(); isOp(t, "(") || isKw(t, "VALUES") {
		return nil, p.unsupported(t, "INSERT ... VALUES", "publish the record to the source subject, or use INSERT INTO ... SELECT")
	}
	if !isKw(p.tok(), "SELECT") {
		return nil, p.errExpected("SELECT after INSERT INTO " + name)
	}
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	return &InsertInto{Pos: pos, Target: name, Query: q}, nil
}

// query parses SELECT ... up to (not including) the ';'.
func (p *parser) query() (*Select, error) {
	if err := p.expectKw("SELECT", "SELECT"); err != nil {
		return nil, err
	}
	q := &Select{}
	for {
		it, err := p.selectItem()
		if err != nil {
			return nil, err
		}
		q.Items = append(q.Items, it)
		if !p.acceptOp(",") {
			break
		}
	}
	if err := p.expectKw("FROM", "',' or FROM after select item"); err != nil {
		return nil, err
	}
	var err error
	if q.From, err = p.relation(); err != nil {
		return nil, err
	}
	for {
		j, ok, err := p.join()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		q.Joins = append(q.Joins, j)
	}
	if p.acceptKw("WINDOW") {
		if q.Window, err = p.window(); err != nil {
			return nil, err
		}
	}
	if p.acceptKw("WHERE") {
		if q.Where, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if p.acceptKw("GROUP") {
		if err := p.expectKw("BY", "BY after GROUP"); err != nil {
			return nil, err
		}
		if q.GroupBy, err = p.exprList(); err != nil {
			return nil, err
		}
	}
	if p.acceptKw("PARTITION") {
		if err := p.expectKw("BY", "BY after PARTITION"); err != nil {
			return nil, err
		}
		if q.PartitionBy, err = p.exprList(); err != nil {
			return nil, err
		}
	}
	if p.acceptKw("HAVING") {
		if q.Having, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if p.acceptKw("EMIT") {
		switch t := p.tok(); {
		case isKw(t, "CHANGES"), isKw(t, "FINAL"):
			p.next()
			q.Emit = t.Value
		default:
			return nil, p.errExpected("CHANGES or FINAL after EMIT")
		}
	}
	if p.acceptKw("LIMIT") {
		t := p.tok()
		if t.Kind != Integer {
			return nil, p.errExpected("integer after LIMIT")
		}
		p.next()
		n, err := strconv.ParseInt(t.Value, 10, 64)
		if err != nil {
			return nil, p.errAt(t, "integer after LIMIT")
		}
		q.Limit = &n
	}
	return q, nil
}

func (p *parser) exprList() ([]Expr, error) {
	var out []Expr
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		if !p.acceptOp(",") {
			return out, nil
		}
	}
}

func (p *parser) selectItem() (SelectItem, error) {
	if p.acceptOp("*") {
		return SelectItem{Star: true}, nil
	}
	t := p.tok()
	if (t.Kind == Ident || t.Kind == QIdent) && isOp(p.peekN(1), ".") && isOp(p.peekN(2), "*") {
		if t.Kind == Ident && reserved[t.Value] {
			return SelectItem{}, p.errExpected("expression")
		}
		p.i += 3
		return SelectItem{Star: true, Qualifier: t.Value}, nil
	}
	e, err := p.expr()
	if err != nil {
		return SelectItem{}, err
	}
	it := SelectItem{Expr: e}
	if p.acceptKw("AS") {
		if it.Alias, err = p.ident("alias after AS"); err != nil {
			return it, err
		}
	} else if t := p.tok(); t.Kind == QIdent || (t.Kind == Ident && !reserved[t.Value]) {
		p.next()
		it.Alias = t.Value
	}
	return it, nil
}

func (p *parser) relation() (Relation, error) {
	if isOp(p.tok(), "(") {
		return Relation{}, p.unsupported(p.tok(), "a sub-query in FROM", "create the inner query as its own stream or table")
	}
	at := p.tok()
	name, err := p.ident("stream or table name")
	if err != nil {
		return Relation{}, err
	}
	r := Relation{Name: name, Pos: Pos{at.Line, at.Col}}
	if p.acceptKw("AS") {
		if r.Alias, err = p.ident("alias after AS"); err != nil {
			return r, err
		}
	} else if t := p.tok(); t.Kind == QIdent || (t.Kind == Ident && !reserved[t.Value]) {
		p.next()
		r.Alias = t.Value
	}
	return r, nil
}

func (p *parser) join() (Join, bool, error) {
	var j Join
	switch t := p.tok(); {
	case isKw(t, "JOIN"):
		j.Type = InnerJoin
	case isKw(t, "INNER"):
		j.Type = InnerJoin
		p.next()
	case isKw(t, "LEFT"), isKw(t, "RIGHT"), isKw(t, "FULL"):
		j.Type = JoinType(t.Value)
		p.next()
		p.acceptKw("OUTER")
	case isKw(t, "CROSS"), isKw(t, "OUTER"):
		return j, false, p.unsupported(t, t.Value+" JOIN", "use [INNER], LEFT [OUTER], RIGHT [OUTER] or FULL [OUTER] JOIN")
	default:
		return j, false, nil
	}
	if err := p.expectKw("JOIN", "JOIN after "+string(j.Type)); err != nil {
		return j, false, err
	}
	var err error
	if j.Right, err = p.relation(); err != nil {
		return j, false, err
	}
	if p.acceptKw("WITHIN") {
		if p.acceptOp("(") {
			a, err := p.duration("duration (before) in WITHIN (before, after)")
			if err != nil {
				return j, false, err
			}
			if err := p.expectOp(",", "',' between WITHIN before and after"); err != nil {
				return j, false, err
			}
			b, err := p.duration("duration (after) in WITHIN (before, after)")
			if err != nil {
				return j, false, err
			}
			if err := p.expectOp(")", "')' after WITHIN (before, after"); err != nil {
				return j, false, err
			}
			j.Within, j.WithinAfter = &a, &b
		} else {
			d, err := p.duration("duration after WITHIN")
			if err != nil {
				return j, false, err
			}
			j.Within = &d
		}
		if isKw(p.tok(), "GRACE") {
			return j, false, p.unsupported(p.tok(), "GRACE PERIOD on a join window", "drop the grace period")
		}
	}
	if err := p.expectKw("ON", "ON after JOIN "+j.Right.Name); err != nil {
		return j, false, err
	}
	if j.On, err = p.expr(); err != nil {
		return j, false, err
	}
	return j, true, nil
}

func (p *parser) duration(context string) (Duration, error) {
	t := p.tok()
	if t.Kind != Integer {
		return Duration{}, p.errExpected(context)
	}
	p.next()
	n, err := strconv.ParseInt(t.Value, 10, 64)
	if err != nil {
		return Duration{}, p.errAt(t, context)
	}
	u := p.tok()
	if u.Kind != Ident || unitDurations[u.Value] == 0 {
		return Duration{}, p.errExpected("time unit (MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS) after " + t.Value)
	}
	p.next()
	return Duration{N: n, Unit: u.Value}, nil
}

func (p *parser) window() (*Window, error) {
	t := p.tok()
	w := &Window{}
	switch {
	case isKw(t, "TUMBLING"), isKw(t, "HOPPING"), isKw(t, "SESSION"):
		w.Kind = WindowKind(t.Value)
		p.next()
	default:
		return nil, p.errExpected("TUMBLING, HOPPING or SESSION after WINDOW")
	}
	if err := p.expectOp("(", "'(' after "+t.Value); err != nil {
		return nil, err
	}
	var err error
	if w.Kind == Session {
		if w.Size, err = p.duration("session gap (e.g. 30 SECONDS)"); err != nil {
			return nil, err
		}
	} else {
		if err := p.expectKw("SIZE", "SIZE in "+t.Value+" window"); err != nil {
			return nil, err
		}
		if w.Size, err = p.duration("window size after SIZE"); err != nil {
			return nil, err
		}
		if w.Kind == Hopping {
			if err := p.expectOp(",", "',' ADVANCE BY in HOPPING window"); err != nil {
				return nil, err
			}
			if err := p.expectKw("ADVANCE", "ADVANCE BY in HOPPING window"); err != nil {
				return nil, err
			}
			if err := p.expectKw("BY", "BY after ADVANCE"); err != nil {
				return nil, err
			}
			d, err := p.duration("advance interval after ADVANCE BY")
			if err != nil {
				return nil, err
			}
			w.Advance = &d
		}
	}
	for p.acceptOp(",") {
		switch {
		case p.acceptKw("RETENTION") && w.Retention == nil && w.Grace == nil:
			d, err := p.duration("duration after RETENTION")
			if err != nil {
				return nil, err
			}
			w.Retention = &d
		case p.acceptKw("GRACE") && w.Grace == nil:
			if err := p.expectKw("PERIOD", "PERIOD after GRACE"); err != nil {
				return nil, err
			}
			d, err := p.duration("duration after GRACE PERIOD")
			if err != nil {
				return nil, err
			}
			w.Grace = &d
		default:
			if p.i > 0 && (isKw(p.toks[p.i-1], "RETENTION") || isKw(p.toks[p.i-1], "GRACE")) {
				p.i--
				return nil, p.errExpected("at most one RETENTION followed by at most one GRACE PERIOD")
			}
			return nil, p.errExpected("RETENTION or GRACE PERIOD in window")
		}
	}
	if err := p.expectOp(")", "')' after window specification"); err != nil {
		return nil, err
	}
	return w, nil
}
