package events

import (
	"errors"
	"testing"
)

func TestClickCoercion(t *testing.T) {
	c, err := DecodeClick([]byte(`{"IP":"1.2.3.4","USERID":"12","status":302,"bytes":"4096","request":"GET /a\"b HTTP/1.1","time":11,"_time":"21"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != NewInt(12) || c.Status != NewInt(302) || c.Bytes != NewBigInt(4096) || c.UnderTime != NewBigInt(21) {
		t.Errorf("numbers: %+v", c)
	}
	if c.Time != NewString("11") || c.Request != NewString(`GET /a"b HTTP/1.1`) || c.IP != NewString("1.2.3.4") {
		t.Errorf("strings: %+v", c)
	}
	if c.Agent.Valid {
		t.Errorf("missing agent should be NULL: %+v", c.Agent)
	}
	if c, err = DecodeClick([]byte(`{"ip":"x","userid":3.9,"status":"200"}`)); err != nil || c.UserID.V != 3 {
		t.Errorf("3.9 as INT: %v %v (ksqlDB truncates)", c.UserID, err)
	}
}

func TestClickRejects(t *testing.T) {
	for body, want := range map[string]error{
		`[1,2]`: ErrNotObject,
		`{"ip":"x","userid":"abc","status":"200"}`:       ErrCoercion,
		`{"ip":"x","userid":true,"status":"200"}`:        ErrCoercion,
		`{"ip":{},"userid":1,"status":"200"}`:            ErrCoercion,
		`{"ip":"x","status":"200"}`:                      ErrMissingField,
		`{"ip":"x","userid":1,"status":"999"}`:           ErrUnknownStatus,
		`{"ip":"x","userid":99999999999,"status":"200"}`: ErrCoercion,
	} {
		if _, err := DecodeClick([]byte(body)); !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", body, err, want)
		}
	}
	if _, err := DecodeClick([]byte(`{"ip":"x",`)); err == nil {
		t.Error("truncated JSON accepted")
	}
}

func BenchmarkDecodeClick(b *testing.B) {
	data := []byte(`{"ip":"222.90.225.227","userid":12,"remote_user":"-","time":"1","_time":1,"request":"GET /images/logo-small.png HTTP/1.1","status":"302","bytes":"1289","referrer":"-","agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/59.0.3071.115 Safari/537.36"}`)
	for b.Loop() {
		if _, err := DecodeClick(data); err != nil {
			b.Fatal(err)
		}
	}
}
