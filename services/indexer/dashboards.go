package indexer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/jetsuite/jetsuite/shared/topology"
)

// The dashboards of the originals, panel by panel, over jetsuite's indices: "Click Stream
// Analysis" (the clickstream demo's Grafana dashboard, seed inventory A.6) and "Ratings Data"
// (the ratings demo's Kibana dashboard, C.7). This table is the one place the panel queries live:
// the Grafana provisioning files in compose/dashboards are generated from it (go test
// -run TestProvisioningFiles with JETSUITE_UPDATE_DASHBOARDS=1) and checked against it, and
// TestDashboardQueries runs every panel's aggregation against a real OpenSearch.

// Dashboard titles.
const (
	ClickStreamAnalysis = "Click Stream Analysis"
	RatingsData         = "Ratings Data"
)

// Metric is a panel's metric: count (documents), max, avg or median of a field.
type Metric struct {
	Type  string
	Field string
}

// Bucket is one bucket aggregation of a panel, outermost first: terms (top Size by OrderBy
// "_key" or "_count", descending) or date_histogram (Interval, "" = auto).
type Bucket struct {
	Type     string
	Field    string
	Size     int
	OrderBy  string
	Interval string
}

// GridPos is a panel's place on Grafana's 24-column grid.
type GridPos struct{ X, Y, W, H int }

// Panel is one dashboard panel.
type Panel struct {
	Dashboard string
	Title     string
	// Kind is the visualisation: timeseries (lines/points), bars (stacked), area (stacked),
	// table, stat, or search (the documents themselves, newest first: Kibana's saved search).
	Kind      string
	Source    string // stream or table; the index is its lower-case name
	TimeField string
	Metric    Metric
	Buckets   []Bucket
	Columns   []string // search: the columns shown
	Points    bool     // timeseries: points only (the alert panel)
	Grid      GridPos
}

func terms(field string, size int, orderBy string) Bucket {
	return Bucket{Type: "terms", Field: field, Size: size, OrderBy: orderBy}
}

func histogram(field, interval string) Bucket {
	return Bucket{Type: "date_histogram", Field: field, Interval: interval}
}

// Panels returns every panel of both dashboards.
func Panels() []Panel {
	const ev, ex = "EVENT_TS", ExtractTSField
	return []Panel{
		{Dashboard: ClickStreamAnalysis, Title: "400 error status alert HAVING count(*) > 5", Kind: "timeseries", Points: true,
			Source: topology.TableErrorsPerMinAlert, TimeField: ev, Metric: Metric{"max", "ERRORS"},
			Buckets: []Bucket{terms("STATUS", 10, "_key"), histogram(ev, "")}, Grid: GridPos{0, 0, 12, 9}},
		{Dashboard: ClickStreamAnalysis, Title: "Stream-Table JOIN on Clickstream and Web_Users", Kind: "table",
			Source: topology.TableUserIPActivity, TimeField: ev, Metric: Metric{Type: "count"},
			Buckets: []Bucket{terms("IP", 10, "_count"), terms("USERNAME", 10, "_count"), terms("CITY", 10, "_count")}, Grid: GridPos{12, 0, 12, 9}},
		{Dashboard: ClickStreamAnalysis, Title: "User Sessionisation - resource hits", Kind: "timeseries",
			Source: topology.TableClickUserSessions, TimeField: ev, Metric: Metric{"max", "EVENTS"},
			Buckets: []Bucket{terms("USERNAME", 10, "_count"), histogram(ev, "10s")}, Grid: GridPos{0, 9, 24, 10}},
		{Dashboard: ClickStreamAnalysis, Title: "Page Views using LIKE filtering", Kind: "timeseries",
			Source: topology.TablePagesPerMin, TimeField: ev, Metric: Metric{"avg", "PAGES"},
			Buckets: []Bucket{histogram(ev, "10s")}, Grid: GridPos{0, 19, 12, 8}},
		{Dashboard: ClickStreamAnalysis, Title: "TABLE-STREAM JOIN between ClickStream and Codes Table", Kind: "table",
			Source: topology.TableEnrichedErrorCodesCount, TimeField: ev, Metric: Metric{"max", "COUNT"},
			Buckets: []Bucket{terms("CODE", 10, "_key"), terms("DEFINITION", 10, "_count")}, Grid: GridPos{0, 27, 12, 8}},
		{Dashboard: ClickStreamAnalysis, Title: "Count all Events grouped by time bucket", Kind: "timeseries",
			Source: topology.TableEventsPerMin, TimeField: ev, Metric: Metric{"max", "EVENTS"},
			Buckets: []Bucket{histogram(ev, "10s")}, Grid: GridPos{12, 27, 12, 8}},

		{Dashboard: RatingsData, Title: "Unhappy Platinum Customers", Kind: "stat",
			Source: topology.StreamUnhappyPlatinumCustomers, TimeField: ex, Metric: Metric{Type: "count"},
			Buckets: []Bucket{histogram(ex, "")}, Grid: GridPos{0, 0, 4, 6}},
		{Dashboard: RatingsData, Title: "Unhappy Platinum Customers", Kind: "search",
			Source: topology.StreamUnhappyPlatinumCustomers, TimeField: ex,
			Columns: []string{"EMAIL", "MESSAGE", "STARS"}, Grid: GridPos{4, 0, 20, 6}},
		{Dashboard: RatingsData, Title: "Ratings by Channel", Kind: "bars",
			Source: topology.StreamRatingsWithCustomerData, TimeField: ex, Metric: Metric{Type: "count"},
			Buckets: []Bucket{terms("CHANNEL", 5, "_count"), histogram(ex, "")}, Grid: GridPos{0, 6, 12, 9}},
		{Dashboard: RatingsData, Title: "Median Rating, by Club Status", Kind: "area",
			Source: topology.StreamRatingsWithCustomerData, TimeField: ex, Metric: Metric{"median", "STARS"},
			Buckets: []Bucket{terms("CLUB_STATUS", 5, "_count"), histogram(ex, "")}, Grid: GridPos{12, 6, 12, 9}},
		{Dashboard: RatingsData, Title: "Ratings detail", Kind: "search",
			Source: topology.StreamRatingsWithCustomerData, TimeField: ex,
			Columns: []string{"FULL_NAME", "EMAIL", "CLUB_STATUS", "STARS", "MESSAGE", "CHANNEL"}, Grid: GridPos{0, 15, 24, 6}},
		{Dashboard: RatingsData, Title: "Ratings per Person", Kind: "stat",
			Source: topology.StreamRatingsWithCustomerData, TimeField: ex, Metric: Metric{Type: "count"},
			Buckets: []Bucket{terms("FULL_NAME", 5, "_count"), histogram(ex, "")}, Grid: GridPos{0, 21, 24, 6}},
	}
}

// Query is the OpenSearch search body of a panel over [from, to] (epoch ms): what the dashboard
// asks OpenSearch. Aggregations are named b0, b1, ... (buckets, outermost first) and m (metric).
func (p Panel) Query(from, to int64) map[string]any {
	rng := map[string]any{"range": map[string]any{p.TimeField: map[string]any{"gte": from, "lte": to, "format": "epoch_millis"}}}
	if p.Kind == "search" {
		return map[string]any{"size": 500, "query": rng, "_source": p.Columns,
			"sort": []any{map[string]any{p.TimeField: map[string]any{"order": "desc"}}}}
	}
	var aggs map[string]any
	switch p.Metric.Type {
	case "max", "avg":
		aggs = map[string]any{"m": map[string]any{p.Metric.Type: map[string]any{"field": p.Metric.Field}}}
	case "median":
		aggs = map[string]any{"m": map[string]any{"percentiles": map[string]any{"field": p.Metric.Field, "percents": []float64{50}}}}
	}
	for i := len(p.Buckets) - 1; i >= 0; i-- {
		b := p.Buckets[i]
		var agg map[string]any
		switch b.Type {
		case "terms":
			agg = map[string]any{"terms": map[string]any{"field": b.Field, "size": b.Size, "order": map[string]any{b.OrderBy: "desc"}}}
		case "date_histogram":
			interval := b.Interval
			if interval == "" {
				interval = autoInterval(to - from)
			}
			agg = map[string]any{"date_histogram": map[string]any{"field": b.Field, "fixed_interval": interval, "min_doc_count": 1}}
		}
		if aggs != nil {
			agg["aggs"] = aggs
		}
		aggs = map[string]any{"b" + strconv.Itoa(i): agg}
	}
	return map[string]any{"size": 0, "query": rng, "aggs": aggs}
}

// autoInterval is about a hundredth of the range, like Grafana's auto interval, in whole seconds.
func autoInterval(rangeMs int64) string {
	s := max(rangeMs/100/1000, 1)
	return strconv.FormatInt(s, 10) + "s"
}

// Grafana provisioning. The data sources use the OpenSearch plugin (grafana-opensearch-datasource,
// install it with GF_INSTALL_PLUGINS): Grafana's built-in Elasticsearch data source refuses
// OpenSearch 2.x. One data source per index, like the originals' ksql-tables-to-grafana.sh.

// GrafanaPluginType is the data source type of Grafana's OpenSearch plugin.
const GrafanaPluginType = "grafana-opensearch-datasource"

// GrafanaOpenSearchURL is where Grafana reaches OpenSearch in the compose stack.
const GrafanaOpenSearchURL = "http://opensearch:9200"

func datasourceUID(source string) string { return "jetsuite-" + strings.ToLower(source) }

// GrafanaDatasources is the data source provisioning file (YAML; JSON is valid YAML).
func GrafanaDatasources() []byte {
	seen := map[string]bool{}
	var sources []any
	for _, p := range Panels() {
		if seen[p.Source] {
			continue
		}
		seen[p.Source] = true
		sources = append(sources, map[string]any{
			"name": strings.ToLower(p.Source), "uid": datasourceUID(p.Source), "type": GrafanaPluginType,
			"access": "proxy", "url": GrafanaOpenSearchURL, "editable": false,
			"jsonData": map[string]any{"database": strings.ToLower(p.Source), "timeField": p.TimeField,
				"flavor": "opensearch", "version": "2.19.1", "maxConcurrentShardRequests": 5, "pplEnabled": false},
		})
	}
	return marshal(map[string]any{"apiVersion": 1, "datasources": sources})
}

// GrafanaDashboard is one dashboard as Grafana JSON.
func GrafanaDashboard(title string) []byte {
	var panels []any
	timeField := "EVENT_TS"
	for i, p := range Panels() {
		if p.Dashboard != title {
			continue
		}
		timeField = p.TimeField
		panels = append(panels, grafanaPanel(i+1, p))
	}
	return marshal(map[string]any{
		"uid": slug(title), "title": title, "tags": []string{"jetsuite"}, "editable": true,
		"schemaVersion": 39, "refresh": "5s", "time": map[string]any{"from": "now-15m", "to": "now"},
		"panels": panels, "description": "jetsuite: time field " + timeField + "; generated from services/indexer/dashboards.go",
	})
}

func grafanaPanel(id int, p Panel) map[string]any {
	ds := map[string]any{"type": GrafanaPluginType, "uid": datasourceUID(p.Source)}
	target := map[string]any{"refId": "A", "datasource": ds, "queryType": "lucene", "query": "", "timeField": p.TimeField}
	var metrics []any
	switch p.Metric.Type {
	case "count":
		metrics = append(metrics, map[string]any{"id": "1", "type": "count"})
	case "median":
		metrics = append(metrics, map[string]any{"id": "1", "type": "percentiles", "field": p.Metric.Field,
			"settings": map[string]any{"percents": []string{"50"}}})
	case "max", "avg":
		metrics = append(metrics, map[string]any{"id": "1", "type": p.Metric.Type, "field": p.Metric.Field})
	}
	if p.Kind == "search" {
		metrics = []any{map[string]any{"id": "1", "type": "raw_data", "settings": map[string]any{"size": "500"}}}
	}
	buckets := []any{}
	for i, b := range p.Buckets {
		id := strconv.Itoa(i + 2)
		switch b.Type {
		case "terms":
			orderBy := "_term"
			if b.OrderBy == "_count" {
				orderBy = "_count"
			}
			buckets = append(buckets, map[string]any{"id": id, "type": "terms", "field": b.Field,
				"settings": map[string]any{"size": strconv.Itoa(b.Size), "order": "desc", "orderBy": orderBy, "min_doc_count": "1"}})
		case "date_histogram":
			interval := b.Interval
			if interval == "" {
				interval = "auto"
			}
			buckets = append(buckets, map[string]any{"id": id, "type": "date_histogram", "field": b.Field,
				"settings": map[string]any{"interval": interval, "min_doc_count": "0", "trimEdges": "0"}})
		}
	}
	target["metrics"] = metrics
	target["bucketAggs"] = buckets

	panel := map[string]any{"id": id, "title": p.Title, "datasource": ds, "targets": []any{target},
		"gridPos": map[string]any{"x": p.Grid.X, "y": p.Grid.Y, "w": p.Grid.W, "h": p.Grid.H}}
	custom := map[string]any{}
	options := map[string]any{}
	switch p.Kind {
	case "timeseries":
		panel["type"] = "timeseries"
		custom["drawStyle"], custom["showPoints"] = "line", "always"
		if p.Points {
			custom["drawStyle"], custom["pointSize"] = "points", 6
		}
		options["legend"] = map[string]any{"displayMode": "table", "placement": "right", "calcs": []string{"min", "max", "mean", "lastNotNull"}}
	case "bars", "area":
		panel["type"] = "timeseries"
		custom["stacking"] = map[string]any{"mode": "normal", "group": "A"}
		custom["drawStyle"], custom["fillOpacity"] = "bars", 80
		if p.Kind == "area" {
			custom["drawStyle"], custom["fillOpacity"] = "line", 40
		}
	case "stat":
		panel["type"] = "stat"
		options["reduceOptions"] = map[string]any{"calcs": []string{"sum"}, "values": false, "fields": ""}
	case "table":
		panel["type"] = "table"
	case "search":
		panel["type"] = "table"
		names := append([]string{p.TimeField}, p.Columns...)
		panel["transformations"] = []any{
			map[string]any{"id": "filterFieldsByName", "options": map[string]any{"include": map[string]any{"names": names}}},
			map[string]any{"id": "sortBy", "options": map[string]any{"sort": []any{map[string]any{"field": p.TimeField, "desc": true}}}},
		}
	}
	if p.Kind == "area" && p.Source == topology.StreamRatingsWithCustomerData {
		// The original's club colours.
		var overrides []any
		for _, c := range [][2]string{{"gold", "#E5AC0E"}, {"bronze", "#99440A"}, {"silver", "#806EB7"}, {"platinum", "#DEDAF7"}} {
			club, colour := c[0], c[1]
			overrides = append(overrides, map[string]any{
				"matcher":    map[string]any{"id": "byRegexp", "options": ".*" + club + ".*"},
				"properties": []any{map[string]any{"id": "color", "value": map[string]any{"mode": "fixed", "fixedColor": colour}}},
			})
		}
		panel["fieldConfig"] = map[string]any{"defaults": map[string]any{"custom": custom}, "overrides": overrides}
	} else {
		panel["fieldConfig"] = map[string]any{"defaults": map[string]any{"custom": custom}, "overrides": []any{}}
	}
	panel["options"] = options
	return panel
}

// GrafanaDashboardProvider is the dashboard provider provisioning file.
func GrafanaDashboardProvider() []byte {
	return marshal(map[string]any{"apiVersion": 1, "providers": []any{map[string]any{
		"name": "jetsuite", "folder": "jetsuite", "type": "file", "disableDeletion": false,
		"updateIntervalSeconds": 30, "allowUiUpdates": true,
		"options": map[string]any{"path": "/var/lib/grafana/dashboards/jetsuite"},
	}}})
}

// ProvisioningFiles are the files under compose/dashboards, by path relative to it.
func ProvisioningFiles() map[string][]byte {
	return map[string][]byte{
		"grafana/provisioning/datasources/jetsuite-opensearch.yaml": GrafanaDatasources(),
		"grafana/provisioning/dashboards/jetsuite.yaml":             GrafanaDashboardProvider(),
		"grafana/dashboards/" + slug(ClickStreamAnalysis) + ".json": GrafanaDashboard(ClickStreamAnalysis),
		"grafana/dashboards/" + slug(RatingsData) + ".json":         GrafanaDashboard(RatingsData),
	}
}

func slug(title string) string { return strings.ReplaceAll(strings.ToLower(title), " ", "-") }

// marshal is deterministic, indented JSON (map keys are sorted by encoding/json).
func marshal(v any) []byte {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("dashboards: %v", err)) // only maps, slices and scalars: cannot fail
	}
	return append(data, '\n')
}
