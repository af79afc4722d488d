package sqlrt

import (
	"strings"
)

// JavaLayout converts a java.time.format.DateTimeFormatter pattern, as ksqlDB's
// TIMESTAMPTOSTRING and STRINGTOTIMESTAMP take it ('yyyy-MM-dd HH:mm:ss.SSS'), into a Go
// time layout. Letters: y (year), M (month: M, MM, MMM, MMMM), d, H, h, m, s, S (fraction,
// up to 9), a (AM/PM), E (day name), Z / X / XXX (offset), z (zone name); text in single
// quotes is literal (” is a quote). Other letters are refused. Literal text must not hold
// digits or the words Go's layouts reserve (Jan, Mon, MST, PM), which Go cannot escape.
func JavaLayout(p string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(p); {
		c := p[i]
		if c == '\'' {
			j := i + 1
			for j < len(p) {
				if p[j] == '\'' {
					if j+1 < len(p) && p[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				if p[j] >= '0' && p[j] <= '9' {
					return "", errString("digits in quoted text cannot be expressed")
				}
				b.WriteByte(p[j])
				j++
			}
			if j >= len(p) {
				return "", errString("unterminated quote")
			}
			i = j + 1
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			if c >= '0' && c <= '9' {
				return "", errString("digits in the pattern cannot be expressed")
			}
			b.WriteByte(c)
			i++
			continue
		}
		n := 1
		for i+n < len(p) && p[i+n] == c {
			n++
		}
		i += n
		var s string
		switch c {
		case 'y', 'u':
			s = "2006"
			if n == 2 {
				s = "06"
			}
		case 'M', 'L':
			s = [...]string{"1", "01", "Jan", "January"}[min(n, 4)-1]
		case 'd':
			s = [...]string{"2", "02"}[min(n, 2)-1]
		case 'H':
			s = "15"
		case 'h':
			s = [...]string{"3", "03"}[min(n, 2)-1]
		case 'm':
			s = [...]string{"4", "04"}[min(n, 2)-1]
		case 's':
			s = [...]string{"5", "05"}[min(n, 2)-1]
		case 'S':
			if n > 9 {
				return "", errString("more than 9 S")
			}
			// Go writes fractions only after a '.' or ','; the pattern has that separator.
			str := b.String()
			if !strings.HasSuffix(str, ".") && !strings.HasSuffix(str, ",") {
				return "", errString("S must follow '.' or ','")
			}
			s = strings.Repeat("0", n)
		case 'a':
			s = "PM"
		case 'E':
			s = "Mon"
			if n >= 4 {
				s = "Monday"
			}
		case 'Z':
			s = "-0700"
			if n == 5 {
				s = "-07:00"
			}
		case 'X':
			s = [...]string{"Z07", "Z0700", "Z07:00"}[min(n, 3)-1]
		case 'x':
			s = [...]string{"-07", "-0700", "-07:00"}[min(n, 3)-1]
		case 'z':
			s = "MST"
		default:
			return "", errString("pattern letter " + string(c) + " is not supported")
		}
		b.WriteString(s)
	}
	return b.String(), nil
}
