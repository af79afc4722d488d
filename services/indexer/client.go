package indexer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/opensearch-project/opensearch-go/v2"
	"github.com/opensearch-project/opensearch-go/v2/opensearchapi"
)

// newClient builds the OpenSearch client: basic auth, TLS from a CA file (or no verification),
// and transport-level retries only to move on to the next node when one is unreachable or
// answers 502/503/504; everything else is retried by the writer, which knows which documents
// are at stake.
func newClient(cfg Config) (*opensearch.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in setting
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("indexer: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("indexer: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
	}
	for _, u := range cfg.URLs {
		if _, err := url.Parse(u); err != nil {
			return nil, fmt.Errorf("indexer: OpenSearch URL %s: %w", redactURL(u), err)
		}
	}
	c, err := opensearch.NewClient(opensearch.Config{
		Addresses:     cfg.URLs,
		Username:      cfg.Username,
		Password:      cfg.Password,
		Transport:     transport,
		RetryOnStatus: []int{502, 503, 504},
		MaxRetries:    max(1, len(cfg.URLs)),
	})
	if err != nil {
		return nil, fmt.Errorf("indexer: OpenSearch client: %w", err)
	}
	return c, nil
}

// TemplateName is the name of the composable index template the indexer installs.
func (c Config) TemplateName() string { return c.IndexPrefix + "jetsuite" }

// Template is the index template: one shard, no replicas (a demo's single node stays green),
// EVENT_TS and every *_TS field a date (epoch ms or ISO text, like the originals' dynamic
// templates), WINDOW_START/WINDOW_END dates too, and every string a keyword (exact terms for the
// dashboards' terms aggregations; no .keyword sub-fields).
func (c Config) Template() map[string]any {
	var patterns []string
	for _, s := range c.sources() {
		patterns = append(patterns, s.Index)
	}
	date := map[string]any{"type": "date", "format": "strict_date_optional_time||epoch_millis"}
	return map[string]any{
		"index_patterns": patterns,
		"priority":       200,
		"template": map[string]any{
			"settings": map[string]any{"number_of_shards": 1, "number_of_replicas": 0},
			"mappings": map[string]any{
				"dynamic_templates": []any{
					map[string]any{"timestamps": map[string]any{"match": "*_TS", "mapping": date}},
					map[string]any{"windows": map[string]any{"match": "WINDOW_*", "mapping": date}},
					map[string]any{"strings": map[string]any{"match_mapping_type": "string",
						"mapping": map[string]any{"type": "keyword", "ignore_above": 8191}}},
				},
			},
		},
		"_meta": map[string]any{"managed_by": "jetsuite indexer"},
	}
}

// installTemplate puts the index template, retrying while OpenSearch is unreachable.
func (x *Indexer) installTemplate(ctx context.Context) error {
	body, err := json.Marshal(x.cfg.Template())
	if err != nil {
		return err
	}
	delay := x.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		err := x.putTemplate(ctx, body)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt == 0 || attempt%10 == 9 {
			x.log.Warn("cannot install the index template yet", "err", err, "retry_in", delay)
		}
		sleep(ctx, delay)
		delay = min(2*delay, x.cfg.RetryMax)
	}
}

func (x *Indexer) putTemplate(ctx context.Context, body []byte) error {
	res, err := opensearchapi.IndicesPutIndexTemplateRequest{
		Name: x.cfg.TemplateName(),
		Body: bytes.NewReader(body),
	}.Do(ctx, x.client)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.IsError() {
		text, _ := io.ReadAll(io.LimitReader(res.Body, 500))
		return fmt.Errorf("put index template: %s: %s", res.Status(), text)
	}
	return nil
}

// redactURL hides a password written into a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func redactURLs(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = redactURL(u)
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
