package ksql

import "fmt"

// SyntaxError is the error returned by Lex and Parse. Its message names
// file:line:col, the offending token and what was expected, e.g.
//
//	pipe.sql:3:14: expected ')' after column list, found ';'
//
// Unsupported is set for recognisable ksqlDB syntax this parser does not
// accept (CREATE TYPE, INSERT VALUES, PRINT, ...); Hint then says what to
// do instead.
type SyntaxError struct {
	File        string
	Line, Col   int
	Token       string // the offending token as shown in the message ('x' or "end of input")
	Expected    string // what the parser expected, with context ("')' after column list")
	Msg         string // set instead of Expected for lexical and "not supported" errors
	Hint        string
	Unsupported bool
}

func (e *SyntaxError) Error() string {
	loc := fmt.Sprintf("%d:%d", e.Line, e.Col)
	if e.File != "" {
		loc = e.File + ":" + loc
	}
	var s string
	if e.Msg != "" {
		s = loc + ": " + e.Msg
	} else {
		s = loc + ": expected " + e.Expected + ", found " + e.Token
	}
	if e.Hint != "" {
		s += " (hint: " + e.Hint + ")"
	}
	return s
}
