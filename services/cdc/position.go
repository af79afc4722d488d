package cdc

import (
	"encoding/json"
	"strconv"
	"strings"
)

// position is a MySQL/MariaDB binlog coordinate: file, byte offset of the event in it, and the
// row within a multi-row event (Debezium's source.file, source.pos, source.row). Debezium gives
// snapshot rows (op r) the binlog position the snapshot started at.
type position struct {
	Valid bool
	File  string
	// FileNum is the file name's numeric suffix (mysql-bin.000003 -> 3): binlog files are
	// compared by it, so that a rotation to mysql-bin.1000000 still sorts after .999999.
	FileNum int64
	Pos     int64
	Row     int64
}

func parsePosition(file string, pos, row json.RawMessage) position {
	if file == "" {
		return position{}
	}
	p, ok := rawInt(pos)
	if !ok {
		return position{}
	}
	r, _ := rawInt(row)
	return position{Valid: true, File: file, FileNum: fileNumber(file), Pos: p, Row: r}
}

func fileNumber(file string) int64 {
	i := strings.LastIndexByte(file, '.')
	n, err := strconv.ParseInt(file[i+1:], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// compare orders two valid positions: -1, 0 or 1.
func (p position) compare(q position) int {
	switch {
	case p.FileNum != q.FileNum:
		return cmp(p.FileNum, q.FileNum)
	case p.FileNum < 0 && p.File != q.File:
		// Neither file name ends in a number: fall back to the names.
		return strings.Compare(p.File, q.File)
	case p.Pos != q.Pos:
		return cmp(p.Pos, q.Pos)
	}
	return cmp(p.Row, q.Row)
}

func cmp(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (p position) String() string {
	if !p.Valid {
		return "unknown"
	}
	return p.File + ":" + strconv.FormatInt(p.Pos, 10) + ":" + strconv.FormatInt(p.Row, 10)
}

// Bookkeeping columns the reader adds to every CUSTOMERS row, and the record it keeps in
// CDC_STATE for deleted keys and truncates.
const (
	colSourceFile = "__SOURCE_FILE"
	colSourcePos  = "__SOURCE_POS"
	colSourceRow  = "__SOURCE_ROW"
	colSourceTs   = "__SOURCE_TS_MS"
	colOp         = "__OP"
)

// posRecord is a position as stored in CDC_STATE (deleted.<id>, truncated).
type posRecord struct {
	File string `json:"file"`
	Pos  int64  `json:"pos"`
	Row  int64  `json:"row"`
}

func (p position) record() posRecord { return posRecord{File: p.File, Pos: p.Pos, Row: p.Row} }

func (r posRecord) position() position {
	if r.File == "" {
		return position{}
	}
	return position{Valid: true, File: r.File, FileNum: fileNumber(r.File), Pos: r.Pos, Row: r.Row}
}

// rowPosition reads the bookkeeping columns of a CUSTOMERS value.
func rowPosition(value []byte) position {
	var v struct {
		File string          `json:"__SOURCE_FILE"`
		Pos  json.RawMessage `json:"__SOURCE_POS"`
		Row  json.RawMessage `json:"__SOURCE_ROW"`
	}
	if json.Unmarshal(value, &v) != nil {
		return position{}
	}
	return parsePosition(v.File, v.Pos, v.Row)
}
