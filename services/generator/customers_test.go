package generator

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// envelope is a change event decoded the way a CDC reader would, without this package's types.
type envelope struct {
	Before map[string]any `json:"before"`
	After  map[string]any `json:"after"`
	Source struct {
		Version   string  `json:"version"`
		Connector string  `json:"connector"`
		Name      string  `json:"name"`
		TsMs      int64   `json:"ts_ms"`
		Snapshot  string  `json:"snapshot"`
		DB        string  `json:"db"`
		Table     string  `json:"table"`
		ServerID  int64   `json:"server_id"`
		GTID      *string `json:"gtid"`
		File      string  `json:"file"`
		Pos       int64   `json:"pos"`
		Row       *int    `json:"row"`
		Thread    *int64  `json:"thread"`
	} `json:"source"`
	Op   string `json:"op"`
	TsMs int64  `json:"ts_ms"`
}

func decodeEnvelope(t *testing.T, b []byte) envelope {
	t.Helper()
	var e envelope
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(b, &keys)
	for _, k := range []string{"before", "after", "source", "op", "ts_ms", "transaction"} {
		if _, ok := keys[k]; !ok {
			t.Fatalf("envelope lacks %q: %s", k, b)
		}
	}
	s := e.Source
	if s.Connector != "mysql" || s.Name != "asgard" || s.DB != "demo" || s.Table != "CUSTOMERS" || s.Version == "" ||
		s.ServerID == 0 || s.GTID != nil || !strings.HasPrefix(s.File, "mysql-bin.") || s.Row == nil || s.TsMs == 0 || e.TsMs < s.TsMs {
		t.Fatalf("bad source block: %s", b)
	}
	return e
}

// checkChanges checks a whole sequence of change events: valid envelopes, positions that never
// go back (snapshot records share the snapshot's position, each change after it moves on), the
// before image of each change equal to the row's previous after image, and the demo's script.
func checkChanges(t *testing.T, bodies [][]byte) {
	t.Helper()
	if len(bodies) < CustomerEvents {
		t.Fatalf("%d events, want at least %d", len(bodies), CustomerEvents)
	}
	rows := map[float64]map[string]any{}
	var lastPos int64
	for i, b := range bodies {
		e := decodeEnvelope(t, b)
		if e.Source.Pos < lastPos || (e.Op != "r" && e.Source.Pos == lastPos) {
			t.Fatalf("event %d: pos %d after %d", i, e.Source.Pos, lastPos)
		}
		lastPos = e.Source.Pos
		switch {
		case i < seedRowCount:
			want := map[int]string{0: "first", seedRowCount - 1: "last"}[i]
			if want == "" {
				want = "true"
			}
			if e.Op != "r" || e.Before != nil || e.Source.Snapshot != want || e.Source.Thread != nil {
				t.Fatalf("snapshot event %d: %s", i, b)
			}
			s := seedCustomers[i]
			a := e.After
			if a["id"] != float64(i+1) || a["first_name"] != s[0] || a["last_name"] != s[1] || a["email"] != s[2] ||
				a["gender"] != s[3] || a["club_status"] != s[4] || a["comments"] != s[5] {
				t.Fatalf("snapshot row %d: %v, want %v", i+1, a, s)
			}
			if _, err := time.Parse(time.RFC3339, a["create_ts"].(string)); err != nil {
				t.Fatalf("create_ts: %v", err)
			}
		default:
			if e.Source.Snapshot != "false" || e.Source.Thread == nil || e.Source.TsMs%1000 != 0 {
				t.Fatalf("change event %d: %s", i, b)
			}
			id := e.After["id"].(float64)
			prev, ok := rows[id]
			if e.Op == "c" {
				if ok || e.Before != nil {
					t.Fatalf("insert of existing row %v: %s", id, b)
				}
			} else if e.Op != "u" || !ok || !equalRows(prev, e.Before) {
				t.Fatalf("event %d: before %v, want the previous after %v (%s)", i, e.Before, prev, b)
			}
		}
		rows[e.After["id"].(float64)] = e.After
		if i >= seedRowCount && i < CustomerEvents {
			want := []struct {
				op, col string
				id      float64
				val     any
			}{
				{"c", "first_name", 42, "Rick"},
				{"u", "email", 42, "rick@example.com"},
				{"u", "club_status", 42, "bronze"},
				{"u", "club_status", 42, "platinum"},
				{"u", "club_status", 2, "bronze"},
				{"u", "club_status", 2, "platinum"},
			}[i-seedRowCount]
			if e.Op != want.op || e.After["id"] != want.id || e.After[want.col] != want.val {
				t.Fatalf("script step %d: %s, want %s %v.%s=%v", i-seedRowCount, b, want.op, want.id, want.col, want.val)
			}
			if i == seedRowCount && (e.After["last_name"] != "Astley" || e.After["email"] != nil || e.After["club_status"] != nil) {
				t.Fatalf("Rick Astley is inserted with only his name: %s", b)
			}
		}
	}
}

func equalRows(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestCustomersDebezium(t *testing.T) {
	c := &Customers{Seed: testSeed, Step: 15 * time.Second, UpdateEvery: 30 * time.Second}
	now := time.Date(2021, 9, 8, 8, 3, 24, 123_000_000, time.UTC)
	var plain [][]byte
	for n := range uint64(CustomerEvents + 40) {
		if d := c.Delay(n); n >= seedRowCount && d <= 0 {
			t.Fatalf("delay before event %d is %v", n, d)
		}
		now = now.Add(c.Delay(n) + 7*time.Millisecond)
		e := c.Next(n, now)
		b, err := EncodeDebezium(e, false)
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, b)
		// The schema-wrapped form carries the same payload.
		w, err := EncodeDebezium(e, true)
		if err != nil {
			t.Fatal(err)
		}
		var wrapped struct {
			Schema struct {
				Name   string `json:"name"`
				Fields []struct {
					Field string `json:"field"`
				} `json:"fields"`
			} `json:"schema"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(w, &wrapped); err != nil {
			t.Fatal(err)
		}
		if wrapped.Schema.Name != "asgard.demo.CUSTOMERS.Envelope" || len(wrapped.Schema.Fields) != 8 || !bytes.Equal(wrapped.Payload, b) {
			t.Fatalf("wrapped form: %s", w)
		}
	}
	checkChanges(t, plain)
	// The script takes a couple of minutes at the default step: Rick Astley is platinum after 4 steps.
	var total time.Duration
	for n := uint64(seedRowCount); n < seedRowCount+4; n++ {
		total += c.Delay(n)
	}
	if total > 2*time.Minute {
		t.Errorf("Rick Astley's sequence takes %v", total)
	}
	// State survives a JSON round trip and continues identically.
	b, _ := json.Marshal(c)
	var back Customers
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	back.Seed, back.Step, back.UpdateEvery = c.Seed, c.Step, c.UpdateEvery
	n := uint64(CustomerEvents + 40)
	x, _ := json.Marshal(c.Next(n, now))
	y, _ := json.Marshal(back.Next(n, now))
	if !bytes.Equal(x, y) {
		t.Fatalf("restored table diverges:\n%s\n%s", x, y)
	}
}

func TestRotateAfter(t *testing.T) {
	var c Customers
	for in, want := range map[string]string{
		"mysql-bin.000003": "mysql-bin.000004",
		"mysql-bin.999999": "mysql-bin.1000000",
		"binlog.000019":    "binlog.000020",
	} {
		if !c.RotateAfter(in) || c.File != want {
			t.Errorf("RotateAfter(%q) = %q, want %q", in, c.File, want)
		}
	}
	if c.RotateAfter("nonumber") {
		t.Error("RotateAfter accepted a file without a number")
	}
}
