package indexer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/opensearch-project/opensearch-go/v2"
	"github.com/opensearch-project/opensearch-go/v2/opensearchapi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Why a bulk loop of our own instead of opensearchutil.BulkIndexer (v2): the BulkIndexer does not
// retry items that failed with 429 or 5xx, and when a whole request fails it calls only OnError,
// never the items' OnFailure, so the caller cannot tell which messages a failed flush held
// (peers-and-apis §2.6). An input message may only be acked once OpenSearch confirmed its document,
// so the writer below returns one verdict per operation, and retries until every operation is
// either confirmed or rejected for good.

var bulkRetries = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "jetsuite_indexer_retries_total",
	Help: "Bulk operations retried, by cause (item_429, item_5xx, request: the whole _bulk request failed).",
}, []string{"cause"})

// op is one bulk operation: an index (Body set) or a delete (Body nil) of one document.
type op struct {
	Index string
	ID    string
	Body  []byte // compact JSON, one line
	// Version > 0 makes the operation use external versioning (tables: the KV revision), so
	// that an older row never overwrites a newer one, whatever order requests arrive in.
	Version uint64
}

// verdict is what happened to one operation.
type verdict struct {
	OK bool
	// Rejected operations failed for good (a mapping error, say); Status, Type and Reason are
	// OpenSearch's.
	Status int
	Type   string
	Reason string
}

// writer sends operations with _bulk and retries what may succeed later.
type writer struct {
	client   *opensearch.Client
	maxDocs  int
	maxBytes int
	backoff  time.Duration // first retry delay
	maxWait  time.Duration // retry delay cap
	log      *slog.Logger
}

// write sends ops and returns one verdict per op. It returns only when every op is confirmed
// (OK) or rejected, or with ctx's error (then nothing may be acked: which requests OpenSearch
// applied is unknown, and a redelivery re-sends the same ids harmlessly). onRetry, if set, is
// called before each retry wait.
func (w *writer) write(ctx context.Context, ops []op, onRetry func()) ([]verdict, error) {
	out := make([]verdict, len(ops))
	pending := make([]int, len(ops))
	for i := range pending {
		pending[i] = i
	}
	delay := w.backoff
	limit := w.maxDocs
	for attempt := 0; ; attempt++ {
		var retry []int
		var lastErr error
		for start := 0; start < len(pending); {
			chunk, body := w.chunk(ops, pending[start:], limit)
			start += len(chunk)
			items, err := w.send(ctx, body)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var reqErr *requestError
			switch {
			case errors.As(err, &reqErr) && reqErr.permanent():
				// The request itself was refused (too large, unparsable): split it until the
				// one document at fault stands alone, then reject that document.
				if len(chunk) == 1 {
					out[chunk[0]] = verdict{Status: reqErr.status, Type: "request_rejected", Reason: reqErr.Error()}
					continue
				}
				limit = max(1, len(chunk)/2)
				retry = append(retry, chunk...)
				lastErr = err
			case err != nil:
				bulkRetries.WithLabelValues("request").Add(float64(len(chunk)))
				retry = append(retry, chunk...)
				lastErr = err
			case len(items) != len(chunk):
				bulkRetries.WithLabelValues("request").Add(float64(len(chunk)))
				retry = append(retry, chunk...)
				lastErr = fmt.Errorf("bulk response has %d items for %d operations", len(items), len(chunk))
			default:
				for k, it := range items {
					i := chunk[k]
					switch classify(it, ops[i]) {
					case itemOK:
						out[i] = verdict{OK: true}
					case itemReject:
						out[i] = verdict{Status: it.Status, Type: it.Error.Type, Reason: it.Error.text()}
					case itemRetry:
						cause := "item_5xx"
						if it.Status == http.StatusTooManyRequests {
							cause = "item_429"
						}
						bulkRetries.WithLabelValues(cause).Inc()
						retry = append(retry, i)
						lastErr = fmt.Errorf("item %s/%s: %d %s: %s", ops[i].Index, ops[i].ID, it.Status, it.Error.Type, it.Error.Reason)
					}
				}
			}
		}
		if len(retry) == 0 {
			return out, nil
		}
		// Say so at the first failure and then now and again, not on every attempt.
		if attempt == 0 || attempt%10 == 9 {
			w.log.Warn("opensearch bulk: retrying", "operations", len(retry), "attempt", attempt+1, "delay", delay, "err", lastErr)
		}
		if onRetry != nil {
			onRetry()
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, w.maxWait)
		pending = retry
	}
}

// chunk takes operations from idx for one request: at most limit documents and about maxBytes.
func (w *writer) chunk(ops []op, idx []int, limit int) ([]int, []byte) {
	var buf bytes.Buffer
	n := 0
	for n < len(idx) && n < limit {
		before := buf.Len()
		appendAction(&buf, ops[idx[n]])
		if n > 0 && buf.Len() > w.maxBytes {
			buf.Truncate(before)
			break
		}
		n++
	}
	return idx[:n], buf.Bytes()
}

// appendAction writes one operation as bulk NDJSON lines.
func appendAction(buf *bytes.Buffer, o op) {
	action := "index"
	if o.Body == nil {
		action = "delete"
	}
	buf.WriteString(`{"`)
	buf.WriteString(action)
	buf.WriteString(`":{"_index":`)
	writeJSONString(buf, o.Index)
	buf.WriteString(`,"_id":`)
	writeJSONString(buf, o.ID)
	if o.Version > 0 {
		buf.WriteString(`,"version":`)
		buf.WriteString(strconv.FormatUint(o.Version, 10))
		buf.WriteString(`,"version_type":"external"`)
	}
	buf.WriteString("}}\n")
	if o.Body != nil {
		buf.Write(o.Body)
		buf.WriteByte('\n')
	}
}

func writeJSONString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always marshals
	buf.Write(b)
}

// bulkItem is one entry of a _bulk response.
type bulkItem struct {
	Status int       `json:"status"`
	Error  bulkError `json:"error"`
}

type bulkError struct {
	Type     string     `json:"type"`
	Reason   string     `json:"reason"`
	CausedBy *bulkError `json:"caused_by"`
}

// text is OpenSearch's reason with its first cause ("failed to parse field [EVENT_TS] ... (caused
// by illegal_argument_exception: ...)").
func (e bulkError) text() string {
	if e.CausedBy == nil {
		return e.Reason
	}
	return e.Reason + " (caused by " + e.CausedBy.Type + ": " + e.CausedBy.Reason + ")"
}

type itemClass int

const (
	itemOK itemClass = iota
	itemRetry
	itemReject
)

// classify decides what an item's status means.
//   - 2xx: confirmed.
//   - 409 with external versioning: OpenSearch already holds this revision or a newer one.
//   - 404 on a delete: the document is already gone.
//   - 429, 5xx: overloaded or failing: retry.
//   - 401, 403, 404 on an index op: permissions, index blocks or a missing index (auto-create
//     off) are the operator's to fix, not the document's fault: retry (and log) until fixed.
//   - any other 4xx (400 mapper_parsing_exception, ...): this document will never be accepted:
//     reject it (dead letter).
func classify(it bulkItem, o op) itemClass {
	s := it.Status
	switch {
	case s >= 200 && s < 300:
		return itemOK
	case s == http.StatusConflict && o.Version > 0:
		return itemOK
	case s == http.StatusNotFound && o.Body == nil:
		return itemOK
	case s == http.StatusTooManyRequests, s >= 500, s == 0:
		return itemRetry
	case s == http.StatusUnauthorized, s == http.StatusForbidden, s == http.StatusNotFound, s == http.StatusRequestTimeout:
		return itemRetry
	default:
		return itemReject
	}
}

// requestError is a _bulk request that OpenSearch answered with an error status.
type requestError struct {
	status int
	body   string
}

func (e *requestError) Error() string {
	return fmt.Sprintf("bulk request failed: %d %s", e.status, e.body)
}

// permanent says whether re-sending the same request can never succeed (it must be split).
func (e *requestError) permanent() bool {
	return e.status == http.StatusBadRequest || e.status == http.StatusRequestEntityTooLarge
}

// send posts one _bulk body and returns its items.
func (w *writer) send(ctx context.Context, body []byte) ([]bulkItem, error) {
	req := opensearchapi.BulkRequest{
		Body:       bytes.NewReader(body),
		FilterPath: []string{"errors", "items.*.status", "items.*.error"},
	}
	res, err := req.Do(ctx, w.client)
	if err != nil {
		return nil, fmt.Errorf("bulk request: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("bulk response: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		text := string(data)
		if len(text) > 300 {
			text = text[:300] + "..."
		}
		return nil, &requestError{status: res.StatusCode, body: text}
	}
	var parsed struct {
		Items []map[string]bulkItem `json:"items"`
	}
	if err := json.Unmarshal(data, &parsed); err != nil {
		return nil, fmt.Errorf("bulk response: %w", err)
	}
	items := make([]bulkItem, len(parsed.Items))
	for i, m := range parsed.Items {
		for _, it := range m { // one key: the action
			items[i] = it
		}
	}
	return items, nil
}
