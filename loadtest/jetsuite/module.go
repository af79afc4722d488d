package jetsuite

import (
	"context"
	"errors"
	"time"

	"github.com/grafana/sobek"
	"go.k6.io/k6/js/common"
	"go.k6.io/k6/js/modules"
	"go.k6.io/k6/metrics"
)

func init() {
	modules.Register("k6/x/jetsuite", new(RootModule))
}

// RootModule is the module as registered: one per k6 process.
type RootModule struct{}

// ModuleInstance is the module in one VU.
type ModuleInstance struct {
	vu      modules.VU
	metrics *Metrics
}

// Metrics are the custom k6 metrics the module reports, from Go, into the VU's sample stream.
type Metrics struct {
	// PublishAck is a batch's time from its first publish to its last ack (Trend, ms).
	PublishAck *metrics.Metric
	// Published counts events acked by JetStream (Counter).
	Published *metrics.Metric
	// PublishFailed counts events that were not acked (Counter).
	PublishFailed *metrics.Metric
	// PipelineLag is the total lag over every consumer of the plan, per reading (Gauge).
	PipelineLag *metrics.Metric
	// E2E is a marker click's time from publish to its table row (Trend, ms).
	E2E *metrics.Metric
}

var (
	_ modules.Module   = new(RootModule)
	_ modules.Instance = new(ModuleInstance)
)

// Metric names; the summary and thresholds use them.
const (
	MetricPublishAck    = "jetsuite_publish_ack"
	MetricPublished     = "jetsuite_events_published"
	MetricPublishFailed = "jetsuite_events_failed"
	MetricPipelineLag   = "jetsuite_pipeline_lag"
	MetricE2E           = "jetsuite_e2e_latency"
)

func registerMetrics(r *metrics.Registry) (*Metrics, error) {
	var m Metrics
	var err error
	for _, d := range []struct {
		p   **metrics.Metric
		n   string
		t   metrics.MetricType
		val metrics.ValueType
	}{
		{&m.PublishAck, MetricPublishAck, metrics.Trend, metrics.Time},
		{&m.Published, MetricPublished, metrics.Counter, metrics.Default},
		{&m.PublishFailed, MetricPublishFailed, metrics.Counter, metrics.Default},
		{&m.PipelineLag, MetricPipelineLag, metrics.Gauge, metrics.Default},
		{&m.E2E, MetricE2E, metrics.Trend, metrics.Time},
	} {
		if *d.p, err = r.NewMetric(d.n, d.t, d.val); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// NewModuleInstance is called once per VU, in its init context (where the registry is).
func (*RootModule) NewModuleInstance(vu modules.VU) modules.Instance {
	m, err := registerMetrics(vu.InitEnv().Registry)
	if err != nil {
		common.Throw(vu.Runtime(), err)
	}
	return &ModuleInstance{vu: vu, metrics: m}
}

// Exports: the Client constructor.
func (mi *ModuleInstance) Exports() modules.Exports {
	return modules.Exports{Named: map[string]any{"Client": mi.newClient}}
}

// newClient is `new Client(url)` or `new Client({url, seed, timeout, queriesFile, fuse})`. It does not connect:
// k6 also runs the init code once just to read the options, and that VU never iterates.
func (mi *ModuleInstance) newClient(call sobek.ConstructorCall) *sobek.Object {
	rt := mi.vu.Runtime()
	var o Options
	a := call.Argument(0)
	switch url, isString := a.Export().(string); {
	case sobek.IsUndefined(a) || sobek.IsNull(a):
	case isString:
		o.URL = url
	default:
		obj := a.ToObject(rt)
		if v := obj.Get("url"); v != nil && !sobek.IsUndefined(v) {
			o.URL = v.String()
		}
		if v := obj.Get("seed"); v != nil && !sobek.IsUndefined(v) {
			o.Seed = uint64(v.ToInteger())
		}
		if v := obj.Get("timeout"); v != nil && !sobek.IsUndefined(v) {
			d, err := time.ParseDuration(v.String())
			if err != nil {
				common.Throw(rt, err)
			}
			o.Timeout = d
		}
		if v := obj.Get("queriesFile"); v != nil && !sobek.IsUndefined(v) {
			o.QueriesFile = v.String()
		}
		if v := obj.Get("fuse"); v != nil && !sobek.IsUndefined(v) {
			o.NoFuse = !v.ToBoolean()
		}
	}
	return rt.ToValue(&Client{vu: mi.vu, m: mi.metrics, opts: o}).ToObject(rt)
}

// Client is the JS object: one NATS connection per VU, opened on first use.
type Client struct {
	vu   modules.VU
	m    *Metrics
	opts Options
	conn *Conn
}

var errInit = errors.New("k6/x/jetsuite: the client talks to NATS only in setup, VU code and teardown, not in the init context")

func (c *Client) connect() (*Conn, error) {
	if c.vu.State() == nil {
		return nil, errInit
	}
	if c.conn == nil {
		conn, err := Dial(c.opts)
		if err != nil {
			return nil, err
		}
		c.conn = conn
	}
	return c.conn, nil
}

// PublishClicks (JS publishClicks(n)) publishes n clicks and waits for their acks.
func (c *Client) PublishClicks(n int) (Batch, error) {
	return c.publish(n, "clickstream", (*Conn).PublishClicks)
}

// PublishRatings (JS publishRatings(n)) publishes n ratings and waits for their acks.
func (c *Client) PublishRatings(n int) (Batch, error) {
	return c.publish(n, "ratings", (*Conn).PublishRatings)
}

func (c *Client) publish(n int, subject string, f func(*Conn, context.Context, int, uint64, int64) Batch) (Batch, error) {
	conn, err := c.connect()
	if err != nil {
		return Batch{}, err
	}
	st := c.vu.State()
	b := f(conn, c.vu.Context(), n, st.VUIDGlobal, st.Iteration)
	tm := st.Tags.GetCurrentValues()
	tags := tm.Tags.With("subject", subject)
	now := time.Now()
	sample := func(m *metrics.Metric, v float64) metrics.Sample {
		return metrics.Sample{TimeSeries: metrics.TimeSeries{Metric: m, Tags: tags}, Time: now, Metadata: tm.Metadata, Value: v}
	}
	metrics.PushIfNotDone(c.vu.Context(), st.Samples, metrics.Samples{
		sample(c.m.PublishAck, b.Ms),
		sample(c.m.Published, float64(b.Acked)),
		sample(c.m.PublishFailed, float64(b.Failed)),
	})
	return b, nil
}

// SeedReference (JS seedReference()) publishes web users, status codes and the CUSTOMERS snapshot.
func (c *Client) SeedReference() (int, error) {
	conn, err := c.connect()
	if err != nil {
		return 0, err
	}
	return conn.SeedReference(c.vu.Context())
}

// TableRows (JS tableRows(name)) is the number of values of a table's KV bucket.
func (c *Client) TableRows(name string) (uint64, error) {
	conn, err := c.connect()
	if err != nil {
		return 0, err
	}
	return conn.TableRows(c.vu.Context(), name)
}

// StreamMessages (JS streamMessages(name)) is the number of messages of a stream.
func (c *Client) StreamMessages(name string) (uint64, error) {
	conn, err := c.connect()
	if err != nil {
		return 0, err
	}
	return conn.StreamMessages(c.vu.Context(), name)
}

// ConsumerLag (JS consumerLag(stream, durable)) is one consumer's NumPending + NumAckPending.
// It reports no metric: one consumer's reading is not the pipeline's lag (pipelineLag is).
func (c *Client) ConsumerLag(stream, durable string) (uint64, error) {
	conn, err := c.connect()
	if err != nil {
		return 0, err
	}
	return conn.ConsumerLag(c.vu.Context(), stream, durable)
}

// CheckPipeline (JS checkPipeline()) connects and fails unless a jetsuite with this plan
// serves NATS and every stream its steps read has a consumer: setup calls it first, so a
// run against nothing fails before it measures nothing.
func (c *Client) CheckPipeline() (Pipeline, error) {
	conn, err := c.connect()
	if err != nil {
		return Pipeline{}, err
	}
	return conn.CheckPipeline(c.vu.Context())
}

// PipelineLag (JS pipelineLag()) is the lag over every consumer of the plan, also reported as
// the gauge jetsuite_pipeline_lag (its total).
func (c *Client) PipelineLag() (Lag, error) {
	conn, err := c.connect()
	if err != nil {
		return Lag{}, err
	}
	l, err := conn.PipelineLag(c.vu.Context())
	if err != nil {
		return Lag{}, err
	}
	c.push(c.m.PipelineLag, float64(l.Total))
	return l, nil
}

// MarkClick (JS markClick(timeoutSeconds)) publishes a marker click and waits for its
// EVENTS_PER_MIN row; an arrived marker is a jetsuite_e2e_latency sample.
func (c *Client) MarkClick(timeoutS float64) (Marker, error) {
	conn, err := c.connect()
	if err != nil {
		return Marker{}, err
	}
	m := conn.MarkClick(c.vu.Context(), time.Duration(timeoutS*float64(time.Second)))
	if m.OK {
		c.push(c.m.E2E, m.Ms)
	}
	return m, nil
}

// Stats (JS stats()) are the events every VU of this process published so far.
func (c *Client) Stats() Stats { return currentStats() }

// SetResult (JS setResult(key, value)) keeps a value for the other VUs of this process (k6's
// VUs share no JS state): the ramp's monitor hands its findings to teardown with it.
func (c *Client) SetResult(key string, v any) { setResult(key, v) }

// Result (JS result(key)) is what SetResult kept, or null.
func (c *Client) Result(key string) any { return getResult(key) }

// push reports one sample with the VU's tags (connect already made sure there is a VU state).
func (c *Client) push(m *metrics.Metric, v float64) {
	st := c.vu.State()
	tm := st.Tags.GetCurrentValues()
	metrics.PushIfNotDone(c.vu.Context(), st.Samples, metrics.Sample{
		TimeSeries: metrics.TimeSeries{Metric: m, Tags: tm.Tags},
		Time:       time.Now(), Metadata: tm.Metadata, Value: v,
	})
}

// Close (JS close()) closes the connection; the next call opens a new one.
func (c *Client) Close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}
