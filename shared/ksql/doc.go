// Package ksql parses the subset of ksqlDB SQL that jetsuite pipelines are
// written in: the statements of the Confluent clickstream and ratings
// demos and their close relatives. It has a hand-written lexer (Lex), a
// recursive-descent parser (Parse, ParseStatement, ParseExpr) producing
// the AST in ast.go, and a printer (Statement.String, Format, FormatExpr)
// whose output parses back to the same AST.
//
// # Lexical rules
//
// Unquoted identifiers ([A-Za-z_][A-Za-z0-9_]*) are upper-cased, as
// ksqlDB does; keywords are such identifiers and are matched
// case-insensitively. `back-quoted` (or "double-quoted") identifiers keep
// their case and may be reserved words. Strings are '...'; a doubled
// quote inside stands for one quote. Numbers are integers (42), decimals (4.2) and doubles (4.2E1).
// Comments are -- to end of line and /* ... */. Every token carries its
// 1-based line and column (in characters).
//
// Reserved words (not usable unquoted as names or aliases): SELECT FROM
// WHERE GROUP BY HAVING WINDOW PARTITION EMIT LIMIT JOIN LEFT RIGHT FULL
// INNER OUTER ON AS AND OR NOT LIKE IN BETWEEN IS NULL TRUE FALSE CASE
// WHEN THEN ELSE END WITH CREATE DROP INSERT INTO SET WITHIN CAST.
// WINDOWSTART, WINDOWEND and ROWTIME are ordinary column names.
//
// # Grammar
//
// { x } is zero or more, [ x ] optional, | alternatives; upper case words
// are keywords.
//
//	script      = { statement ";" } .
//	statement   = set | createSource | createAs | insert | drop | connector | query .
//	set         = SET string "=" string .
//	createSource= CREATE [OR REPLACE] (STREAM | TABLE) [IF NOT EXISTS] name
//	              "(" columnDef { "," columnDef } ")" [ with ] .
//	columnDef   = name type [ KEY | PRIMARY KEY ] .      (KEY: streams, PRIMARY KEY: tables)
//	createAs    = CREATE [OR REPLACE] (STREAM | TABLE) [IF NOT EXISTS] name
//	              [ with ] AS query .
//	with        = WITH "(" name "=" literal { "," name "=" literal } ")" .
//	insert      = INSERT INTO name query .
//	drop        = DROP (STREAM | TABLE) [IF EXISTS] name [DELETE TOPIC] .
//	connector   = CREATE (SINK | SOURCE) CONNECTOR [IF NOT EXISTS] name
//	              WITH "(" string "=" literal { "," string "=" literal } ")" .
//	query       = SELECT selectItem { "," selectItem }
//	              FROM relation { join }
//	              [ WINDOW window ] [ WHERE expr ]
//	              [ GROUP BY expr { "," expr } ] [ PARTITION BY expr { "," expr } ]
//	              [ HAVING expr ] [ EMIT (CHANGES | FINAL) ] [ LIMIT integer ] .
//	selectItem  = "*" | name "." "*" | expr [ [AS] name ] .
//	relation    = name [ [AS] name ] .
//	join        = [ INNER | (LEFT | RIGHT | FULL) [OUTER] ] JOIN relation
//	              [ WITHIN (duration | "(" duration "," duration ")") ] ON expr .
//	window      = TUMBLING "(" SIZE duration windowOpts ")"
//	            | HOPPING  "(" SIZE duration "," ADVANCE BY duration windowOpts ")"
//	            | SESSION  "(" duration windowOpts ")" .
//	windowOpts  = [ "," RETENTION duration ] [ "," GRACE PERIOD duration ] .
//	duration    = integer unit .
//	unit        = MILLISECOND[S] | SECOND[S] | MINUTE[S] | HOUR[S] | DAY[S] .
//	type        = INT | INTEGER | BIGINT | DOUBLE | BOOLEAN | VARCHAR | STRING | BYTES
//	            | TIMESTAMP | DATE | TIME | DECIMAL "(" integer "," integer ")"
//	            | ARRAY "<" type ">" | MAP "<" type "," type ">"
//	            | STRUCT "<" [ name type { "," name type } ] ">" .
//	literal     = string | number | TRUE | FALSE .
//
//	expr        = and { OR and } .
//	and         = not { AND not } .
//	not         = NOT not | predicate .
//	predicate   = additive [ ("=" | "<>" | "!=" | "<" | "<=" | ">" | ">=") additive
//	                       | [NOT] LIKE additive
//	                       | [NOT] IN "(" expr { "," expr } ")"
//	                       | [NOT] BETWEEN additive AND additive
//	                       | IS [NOT] NULL ] .
//	additive    = mult { ("+" | "-") mult } .          ("+" also concatenates strings)
//	mult        = unary { ("*" | "/" | "%") unary } .
//	unary       = ("-" | "+") unary | postfix .
//	postfix     = primary { "->" name | "[" expr "]" } .
//	primary     = literal | NULL | "(" expr ")"
//	            | CAST "(" expr AS type ")"
//	            | CASE [ expr ] WHEN expr THEN expr { WHEN expr THEN expr } [ ELSE expr ] END
//	            | name "(" [ "*" | expr { "," expr } ] ")"       (function call, COUNT(*))
//	            | name [ "." name ] .                            (column, t.column)
//
// Precedence, loosest first: OR, AND, NOT, comparison and the
// LIKE/IN/BETWEEN/IS predicates (not associative), + -, * / %, unary
// minus, postfix -> and [ ]. Binary operators associate to the left.
//
// # Errors
//
// Every error is a *SyntaxError naming file:line:col, the offending
// token and what was expected, e.g. "p.sql:3:14: expected ')' after
// column list, found ';'". Recognisable ksqlDB syntax outside the subset
// (CREATE TYPE, INSERT ... VALUES, PRINT, SHOW, TERMINATE, sub-queries,
// ARRAY/MAP/STRUCT constructors, DISTINCT in calls, header columns, ...)
// gives "... is not supported" with a hint, and Unsupported set.
package ksql
