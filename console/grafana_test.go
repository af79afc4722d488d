package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jetsuite/jetsuite/console"
	"github.com/jetsuite/jetsuite/shared/plan"
)

// ask is what a panel asks for, written the same way for a Grafana panel and a console panel:
// the index (the stream or table, lower case), the time field, the metric and the buckets.
type ask struct {
	Dashboard, Title string
	Index, TimeField string
	Metric           string   // count, max(F), avg(F), median(F), or documents(COLUMNS) for a search
	Buckets          []string // "terms F top N by _key|_count", "date_histogram F every I|auto"
}

// TestConsoleAsksWhatGrafanaAsks: every panel of the Grafana provisioning files in
// compose/dashboards (the dashboards a compose stack shows over OpenSearch) and every panel the
// console serves (GET /api/dashboards, what the browser draws) ask for the same data: same
// panels in the same order, same index, time field, metric and buckets. The files are read as
// Grafana reads them, not through the Go table they are generated from.
func TestConsoleAsksWhatGrafanaAsks(t *testing.T) {
	root := filepath.Join("..", "compose", "dashboards", "grafana")
	var ds struct {
		Datasources []struct {
			UID      string `json:"uid"`
			JSONData struct {
				Database  string `json:"database"`
				TimeField string `json:"timeField"`
			} `json:"jsonData"`
		} `json:"datasources"`
	}
	readJSON(t, filepath.Join(root, "provisioning", "datasources", "jetsuite-opensearch.yaml"), &ds)
	index := map[string]string{}
	for _, d := range ds.Datasources {
		index[d.UID] = d.JSONData.Database
	}

	var grafana []ask
	for _, file := range []string{"click-stream-analysis.json", "ratings-data.json"} {
		var dash struct {
			Title  string `json:"title"`
			Panels []struct {
				Title      string `json:"title"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
				Targets []struct {
					TimeField string `json:"timeField"`
					Metrics   []struct {
						Type     string `json:"type"`
						Field    string `json:"field"`
						Settings struct {
							Percents []string `json:"percents"`
						} `json:"settings"`
					} `json:"metrics"`
					BucketAggs []struct {
						Type     string `json:"type"`
						Field    string `json:"field"`
						Settings struct {
							Size     string `json:"size"`
							OrderBy  string `json:"orderBy"`
							Interval string `json:"interval"`
						} `json:"settings"`
					} `json:"bucketAggs"`
				} `json:"targets"`
				Transformations []struct {
					ID      string `json:"id"`
					Options struct {
						Include struct {
							Names []string `json:"names"`
						} `json:"include"`
					} `json:"options"`
				} `json:"transformations"`
			} `json:"panels"`
		}
		readJSON(t, filepath.Join(root, "dashboards", file), &dash)
		for _, p := range dash.Panels {
			if len(p.Targets) != 1 || len(p.Targets[0].Metrics) != 1 {
				t.Fatalf("%s: %q has %d targets: one target with one metric expected", file, p.Title, len(p.Targets))
			}
			tg := p.Targets[0]
			a := ask{Dashboard: dash.Title, Title: p.Title, Index: index[p.Datasource.UID], TimeField: tg.TimeField, Buckets: []string{}}
			switch m := tg.Metrics[0]; m.Type {
			case "count":
				a.Metric = "count"
			case "max", "avg":
				a.Metric = m.Type + "(" + m.Field + ")"
			case "percentiles":
				if !slices.Equal(m.Settings.Percents, []string{"50"}) {
					t.Fatalf("%q: percentiles %v", p.Title, m.Settings.Percents)
				}
				a.Metric = "median(" + m.Field + ")"
			case "raw_data":
				var cols []string
				for _, tr := range p.Transformations {
					if tr.ID == "filterFieldsByName" {
						for _, n := range tr.Options.Include.Names {
							if n != tg.TimeField {
								cols = append(cols, n)
							}
						}
					}
				}
				a.Metric = "documents(" + strings.Join(cols, ",") + ")"
			default:
				t.Fatalf("%q: metric %s", p.Title, m.Type)
			}
			for _, b := range tg.BucketAggs {
				switch b.Type {
				case "terms":
					order := b.Settings.OrderBy
					if order == "_term" {
						order = "_key" // Grafana's name for OpenSearch's _key
					}
					a.Buckets = append(a.Buckets, "terms "+b.Field+" top "+b.Settings.Size+" by "+order)
				case "date_histogram":
					a.Buckets = append(a.Buckets, "date_histogram "+b.Field+" every "+b.Settings.Interval)
				default:
					t.Fatalf("%q: bucket %s", p.Title, b.Type)
				}
			}
			grafana = append(grafana, a)
		}
	}

	// The console, as the browser gets it.
	mux := http.NewServeMux()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	demo := plan.Demo()
	console.Register(ctx, mux, console.Options{Plan: demo})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/dashboards", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/dashboards: %d %s", rec.Code, rec.Body)
	}
	var dashboards []console.DashboardSpec
	if err := json.Unmarshal(rec.Body.Bytes(), &dashboards); err != nil {
		t.Fatal(err)
	}
	var served []ask
	for _, d := range dashboards {
		if len(d.Panels) != 6 {
			t.Errorf("%s: %d panels, the original has 6", d.Title, len(d.Panels))
		}
		for _, p := range d.Panels {
			a := ask{Dashboard: d.Title, Title: p.Title, Index: strings.ToLower(p.Source), TimeField: p.TimeField, Buckets: []string{}}
			switch {
			case p.Kind == "search":
				a.Metric = "documents(" + strings.Join(p.Columns, ",") + ")"
			case p.Metric.Type == "count":
				a.Metric = "count"
			default:
				a.Metric = p.Metric.Type + "(" + p.Metric.Field + ")"
			}
			for _, b := range p.Buckets {
				switch b.Type {
				case "terms":
					a.Buckets = append(a.Buckets, "terms "+b.Field+" top "+strconv.Itoa(b.Size)+" by "+b.OrderBy)
				case "date_histogram":
					interval := b.Interval
					if interval == "" {
						interval = "auto"
					}
					a.Buckets = append(a.Buckets, "date_histogram "+b.Field+" every "+interval)
				}
			}
			served = append(served, a)
			// The console reads the plan's object of that name: the stream or table the
			// indexer copies into the index; its time is the table's column, or a stream's
			// event time (what the indexer writes as EXTRACT_TS).
			o := demo.Object(p.Source)
			switch {
			case o == nil:
				t.Errorf("%q: the plan has no %s", p.Title, p.Source)
			case o.Column(p.TimeField) < 0 && (o.Bucket != "" || p.TimeField != "EXTRACT_TS"):
				t.Errorf("%q: %s has no time field %s", p.Title, p.Source, p.TimeField)
			}
		}
	}
	if len(served) != len(grafana) {
		t.Fatalf("the console serves %d panels, the Grafana files have %d", len(served), len(grafana))
	}
	for i := range grafana {
		g, c := grafana[i], served[i]
		if g.Dashboard != c.Dashboard || g.Title != c.Title || g.Index != c.Index || g.TimeField != c.TimeField || g.Metric != c.Metric || !slices.Equal(g.Buckets, c.Buckets) {
			t.Errorf("panel %d asks differently:\n  grafana: %+v\n  console: %+v", i+1, g, c)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
