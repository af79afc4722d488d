package indexer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
)

// TestProvisioningFiles checks the files in compose/dashboards are what Panels() generates
// (JETSUITE_UPDATE_DASHBOARDS=1 rewrites them).
func TestProvisioningFiles(t *testing.T) {
	root := filepath.Join("..", "..", "compose", "dashboards")
	update := os.Getenv("JETSUITE_UPDATE_DASHBOARDS") == "1"
	for path, want := range ProvisioningFiles() {
		full := filepath.Join(root, path)
		if update {
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(full)
		if err != nil {
			t.Fatalf("%v (generate with JETSUITE_UPDATE_DASHBOARDS=1 go test -run TestProvisioningFiles ./services/indexer/)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from services/indexer/dashboards.go (regenerate with JETSUITE_UPDATE_DASHBOARDS=1)", full)
		}
	}
	count := map[string]int{}
	for _, p := range Panels() {
		count[p.Dashboard]++
	}
	if count[ClickStreamAnalysis] != 6 || count[RatingsData] != 6 {
		t.Fatalf("panels per dashboard: %v, want 6 each", count)
	}
}

// TestDashboardQueries runs every panel's query against the real OpenSearch after a pipeline run
// and checks it returns data: buckets down to the innermost one, with a metric value.
func TestDashboardQueries(t *testing.T) {
	s := newSearch(t)
	cfg := testConfig(t)
	s.cleanupIndices(cfg)
	env := natstest.Start(t)
	e := newExpectation()
	p := newPublisher(t, env.JS, cfg, e)
	now := time.Now()
	base := now.Add(-10 * time.Minute).UnixMilli()
	startIndexer(t, env, cfg, nil)
	pipelineRun(p, 300, base)
	e.verify(t, s, 60*time.Second)

	// The dashboards' default range: the last 15 minutes.
	from, to := now.Add(-15*time.Minute).UnixMilli(), time.Now().UnixMilli()
	for _, panel := range Panels() {
		t.Run(panel.Dashboard+"/"+panel.Title+"/"+panel.Kind, func(t *testing.T) {
			status, body := s.do("POST", "/"+cfg.IndexName(panel.Source)+"/_search", panel.Query(from, to))
			if status != 200 {
				t.Fatalf("%d %s", status, body)
			}
			var res map[string]any
			if err := json.Unmarshal(body, &res); err != nil {
				t.Fatal(err)
			}
			if panel.Kind == "search" {
				hits := res["hits"].(map[string]any)["hits"].([]any)
				if len(hits) == 0 {
					t.Fatal("no documents")
				}
				for _, h := range hits {
					src := h.(map[string]any)["_source"].(map[string]any)
					for _, c := range panel.Columns {
						if _, ok := src[c]; !ok {
							t.Fatalf("document without column %s: %v", c, src)
						}
					}
				}
				t.Logf("%d documents", len(hits))
				return
			}
			leaves, err := leafValues(res["aggregations"].(map[string]any), 0, panel)
			if err != nil {
				t.Fatal(err)
			}
			if len(leaves) == 0 {
				t.Fatal("no buckets")
			}
			for _, v := range leaves {
				if v <= 0 {
					t.Fatalf("metric value %v in a bucket with documents", v)
				}
			}
			t.Logf("%d leaf buckets, first value %v", len(leaves), leaves[0])
		})
	}
}

// leafValues walks the bucket aggregations b0, b1, ... and returns the metric of every innermost
// bucket (the doc count for count panels).
func leafValues(aggs map[string]any, level int, p Panel) ([]float64, error) {
	if level == len(p.Buckets) {
		switch p.Metric.Type {
		case "count":
			return []float64{aggs["doc_count"].(float64)}, nil
		case "median":
			v, _ := aggs["m"].(map[string]any)["values"].(map[string]any)["50.0"].(float64)
			return []float64{v}, nil
		default:
			v, _ := aggs["m"].(map[string]any)["value"].(float64)
			return []float64{v}, nil
		}
	}
	agg, ok := aggs[fmt.Sprintf("b%d", level)].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no aggregation b%d in %v", level, aggs)
	}
	var out []float64
	for _, b := range agg["buckets"].([]any) {
		vs, err := leafValues(b.(map[string]any), level+1, p)
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
	return out, nil
}
