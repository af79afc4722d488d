package ksql

import (
	"strings"
	"unicode"
)

// TokenKind classifies a lexical token.
type TokenKind int

// Token kinds produced by the lexer.
const (
	EOF     TokenKind = iota // end of input
	Ident                    // unquoted identifier or keyword; Value is upper-cased
	QIdent                   // back- or double-quoted identifier; Value keeps its case
	String                   // '...' literal; Value is unescaped
	Integer                  // 42
	Decimal                  // 4.2
	Double                   // 4.2E1
	Op                       // operator or punctuation; Value is the operator text
)

func (k TokenKind) String() string {
	switch k {
	case EOF:
		return "end of input"
	case Ident:
		return "identifier"
	case QIdent:
		return "quoted identifier"
	case String:
		return "string literal"
	case Integer:
		return "integer"
	case Decimal:
		return "decimal"
	case Double:
		return "double"
	case Op:
		return "operator"
	}
	return "token"
}

// Token is one lexical token with its 1-based position (column counted in
// characters).
type Token struct {
	Kind  TokenKind
	Text  string // source text as written
	Value string // normalised value (see TokenKind)
	Line  int
	Col   int
}

// describe renders the token for error messages: 'text' or "end of input".
func (t Token) describe() string {
	switch t.Kind {
	case EOF:
		return "end of input"
	case String:
		return "string literal " + t.Text
	}
	return "'" + t.Text + "'"
}

var twoCharOps = []string{"<>", "!=", "<=", ">=", "->"}

const oneCharOps = "+-*/%=<>.,;()[]"

// Lex splits src into tokens, ending with an EOF token. Comments and
// white space are dropped. file is used only in error messages.
func Lex(file, src string) ([]Token, error) {
	rs := []rune(src)
	var toks []Token
	line, col := 1, 1
	i := 0
	adv := func(n int) {
		for k := 0; k < n && i < len(rs); k++ {
			if rs[i] == '\n' {
				line++
				col = 1
			} else {
				col++
			}
			i++
		}
	}
	peek := func(off int) rune {
		if i+off < len(rs) {
			return rs[i+off]
		}
		return 0
	}
	for i < len(rs) {
		c := rs[i]
		sl, sc := line, col
		switch {
		case unicode.IsSpace(c):
			adv(1)
		case c == '-' && peek(1) == '-':
			for i < len(rs) && rs[i] != '\n' {
				adv(1)
			}
		case c == '/' && peek(1) == '*':
			adv(2)
			for {
				if i >= len(rs) {
					return nil, &SyntaxError{File: file, Line: sl, Col: sc, Token: "'/*'", Msg: "unterminated block comment"}
				}
				if rs[i] == '*' && peek(1) == '/' {
					adv(2)
					break
				}
				adv(1)
			}
		case c == '\'':
			start := i
			adv(1)
			var b strings.Builder
			for {
				if i >= len(rs) {
					return nil, &SyntaxError{File: file, Line: sl, Col: sc, Token: "'''", Msg: "unterminated string literal"}
				}
				if rs[i] == '\'' {
					if peek(1) == '\'' {
						b.WriteRune('\'')
						adv(2)
						continue
					}
					adv(1)
					break
				}
				b.WriteRune(rs[i])
				adv(1)
			}
			toks = append(toks, Token{Kind: String, Text: string(rs[start:i]), Value: b.String(), Line: sl, Col: sc})
		case c == '`' || c == '"':
			q := c
			start := i
			adv(1)
			var b strings.Builder
			for {
				if i >= len(rs) {
					return nil, &SyntaxError{File: file, Line: sl, Col: sc, Token: "'" + string(q) + "'", Msg: "unterminated quoted identifier"}
				}
				if rs[i] == q {
					if peek(1) == q {
						b.WriteRune(q)
						adv(2)
						continue
					}
					adv(1)
					break
				}
				b.WriteRune(rs[i])
				adv(1)
			}
			if b.Len() == 0 {
				return nil, &SyntaxError{File: file, Line: sl, Col: sc, Token: string(rs[start:i]), Msg: "empty quoted identifier"}
			}
			toks = append(toks, Token{Kind: QIdent, Text: string(rs[start:i]), Value: b.String(), Line: sl, Col: sc})
		case c == '_' || unicode.IsLetter(c):
			start := i
			for i < len(rs) && (rs[i] == '_' || unicode.IsLetter(rs[i]) || unicode.IsDigit(rs[i])) {
				adv(1)
			}
			text := string(rs[start:i])
			toks = append(toks, Token{Kind: Ident, Text: text, Value: strings.ToUpper(text), Line: sl, Col: sc})
		case c >= '0' && c <= '9':
			start := i
			kind := Integer
			for i < len(rs) && rs[i] >= '0' && rs[i] <= '9' {
				adv(1)
			}
			if peek(0) == '.' && peek(1) >= '0' && peek(1) <= '9' {
				kind = Decimal
				adv(1)
				for i < len(rs) && rs[i] >= '0' && rs[i] <= '9' {
					adv(1)
				}
			}
			if e := peek(0); e == 'e' || e == 'E' {
				d := 1
				if s := peek(1); s == '+' || s == '-' {
					d = 2
				}
				if n := peek(d); n >= '0' && n <= '9' {
					kind = Double
					adv(d)
					for i < len(rs) && rs[i] >= '0' && rs[i] <= '9' {
						adv(1)
					}
				}
			}
			if i < len(rs) && (rs[i] == '_' || unicode.IsLetter(rs[i])) {
				return nil, &SyntaxError{File: file, Line: line, Col: col, Token: "'" + string(rs[i]) + "'", Msg: "malformed number " + string(rs[start:i+1])}
			}
			text := string(rs[start:i])
			toks = append(toks, Token{Kind: kind, Text: text, Value: text, Line: sl, Col: sc})
		default:
			matched := ""
			if i+1 < len(rs) {
				two := string(rs[i : i+2])
				for _, op := range twoCharOps {
					if two == op {
						matched = op
					}
				}
			}
			if matched == "" && strings.ContainsRune(oneCharOps, c) {
				matched = string(c)
			}
			if matched == "" {
				return nil, &SyntaxError{File: file, Line: sl, Col: sc, Token: "'" + string(c) + "'", Msg: "unexpected character '" + string(c) + "'"}
			}
			adv(len([]rune(matched)))
			toks = append(toks, Token{Kind: Op, Text: matched, Value: matched, Line: sl, Col: sc})
		}
	}
	toks = append(toks, Token{Kind: EOF, Line: line, Col: col})
	return toks, nil
}
