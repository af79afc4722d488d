// Time-series charts with uPlot: lines with points, points only (the alert panel), stacked bars
// and stacked areas. The x axis is in the browser's time zone (uPlot's default).
import uPlot from 'uplot';

const palette = ['#3274d9', '#e0752d', '#56a64b', '#a352cc', '#e02f44', '#8ab8ff', '#f2cc0c', '#19b1a5', '#b877d9', '#fade2a'];

// The ratings demo's club colours (Kibana's "Median Rating, by Club Status").
const clubColours = { gold: '#E5AC0E', bronze: '#99440A', silver: '#806EB7', platinum: '#DEDAF7' };

function colourOf(name, i) {
  return clubColours[name] || palette[i % palette.length];
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// align turns the server's series ([[ms, v], ...] each) into uPlot's columns: the union of
// the times (seconds), and each series' values with null where it has none.
export function align(series) {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const col = new Array(xs.length).fill(null);
    for (const [x, v] of s.points) col[at.get(x)] = v;
    return col;
  });
  return [xs.map((x) => x / 1000), ...ys];
}

// stack makes every column the running sum of those before it (for stacked bars and areas),
// nulls counting as 0 where a later series has a value.
function stack(cols) {
  const out = [];
  let acc = null;
  for (const col of cols) {
    acc = col.map((v, i) => (v == null && (acc == null || acc[i] == null) ? null : (v || 0) + ((acc && acc[i]) || 0)));
    out.push(acc);
  }
  return out;
}

// Chart draws one panel's series into el and follows the element's size.
export class Chart {
  constructor(el, kind, opts = {}) {
    this.el = el;
    this.kind = kind; // timeseries | bars | area
    this.points = !!opts.points;
    this.range = null;
    this.names = '';
    this.plot = null;
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(el);
  }

  // size is the element's, less the legend uPlot puts below the plot.
  size() {
    const legend = this.plot ? this.plot.root.querySelector('.u-legend') : null;
    const lh = legend ? legend.offsetHeight : 0;
    const w = Math.max(this.el.clientWidth, 200);
    const h = Math.max(this.el.clientHeight - lh, 120);
    return { width: w, height: h };
  }

  resize() {
    if (this.plot) this.plot.setSize(this.size());
  }

  // update draws series over [from, to] (ms).
  update(series, from, to) {
    this.range = [from / 1000, to / 1000];
    const names = `${series.length}:${series.map((s) => s.name).join('\u0000')}`;
    const raw = align(series);
    const stacked = this.kind === 'bars' || this.kind === 'area';
    const data = stacked ? [raw[0], ...stack(raw.slice(1))] : raw;
    if (!this.plot || names !== this.names) {
      this.names = names;
      // Stacked series are drawn top-down (the largest sum first; uPlot draws in order) so
      // each layer stays visible; the columns follow the same order in every update.
      this.order = stacked ? [...series.keys()].reverse() : [...series.keys()];
      this.build(series, this.reorder(raw), this.reorder(data));
      return;
    }
    this.raw = this.reorder(raw);
    this.plot.setData(this.reorder(data)); // rescales: x to the range (its range function), y to the data
  }

  reorder(cols) {
    return [cols[0], ...this.order.map((i) => cols[i + 1])];
  }

  build(series, raw, data) {
    this.raw = raw;
    if (this.plot) this.plot.destroy();
    const axis = { stroke: cssVar('--fg-muted'), grid: { stroke: cssVar('--grid'), width: 1 }, ticks: { stroke: cssVar('--grid') } };
    const s = series.map((ser, i) => {
      const colour = colourOf(ser.name, i);
      const base = {
        label: ser.name || 'value',
        stroke: colour,
        width: 2,
        // Stacked series show their own value in the legend, not the running sum.
        value: (u, v, si, idx) => {
          const r = idx == null ? null : this.raw[si][idx];
          return r == null ? '–' : +r.toFixed(2);
        },
        spanGaps: false,
        points: { show: true, size: 5, fill: colour },
      };
      if (this.kind === 'bars') {
        return { ...base, fill: colour, width: 0, paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } };
      }
      if (this.kind === 'area') {
        // Points too: an area of one interval has no width to show.
        return { ...base, fill: colour + '99', points: { show: true, size: 5, fill: colour } };
      }
      if (this.points) {
        return { ...base, paths: () => null, points: { show: true, size: 8, fill: colour } };
      }
      return base;
    });
    const opts = {
      ...this.size(),
      series: [{}, ...this.order.map((i) => s[i])],
      scales: { x: { time: true, range: () => this.range }, y: { range: (u, lo, hi) => [Math.min(0, lo ?? 0), Math.max(1, (hi ?? 1) * 1.1)] } },
      axes: [axis, { ...axis, size: 50 }],
      legend: { show: true, live: true },
      cursor: { points: { show: false } },
    };
    this.plot = new uPlot(opts, data, this.el);
    this.resize(); // now that the legend's height is known
  }

  destroy() {
    this.ro.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
}
