package alerting

import (
	"fmt"
	"strings"

	"github.com/jetsuite/jetsuite/shared/sqlrt"
)

// template is a Slack sink's 'message': text with {COLUMN} placeholders that the row's values
// fill (mrkdwn-escaped; NULL is empty). {{ and }} are literal braces. A nil template keeps the
// built-in text.
type template []templatePart

type templatePart struct {
	text   string // literal text, or
	column string // a column name (upper-cased unless it was written with other case)
}

func parseTemplate(s string) (template, error) {
	if s == "" {
		return nil, nil
	}
	var t template
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed { at %d", i)
			}
			if lit.Len() > 0 {
				t = append(t, templatePart{text: lit.String()})
				lit.Reset()
			}
			t = append(t, templatePart{column: strings.TrimSpace(s[i+1 : i+end])})
			i += end
		case c == '}':
			return nil, fmt.Errorf("unopened } at %d", i)
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		t = append(t, templatePart{text: lit.String()})
	}
	return t, nil
}

// columns are the template's column names.
func (t template) columns() []string {
	var cols []string
	for _, p := range t {
		if p.column != "" {
			cols = append(cols, p.column)
		}
	}
	return cols
}

// render fills the template with a row of cols.
func (t template) render(cols []sqlrt.Column, row sqlrt.Row) string {
	var b strings.Builder
	for _, p := range t {
		if p.column == "" {
			b.WriteString(p.text)
			continue
		}
		for i, c := range cols {
			if strings.EqualFold(c.Name, p.column) {
				b.WriteString(escape(sqlrt.KeyText(row[i])))
				break
			}
		}
	}
	return b.String()
}
