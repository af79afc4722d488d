// A dashboard page: the original's panels on a 24-column grid (one column on a phone), fed by
// the server's event stream, which sends every panel's data whenever its table or stream
// changed.
import { events, getJSON } from './api.js';
import { Chart } from './charts.js';
import { h, clear, fmtTime, fmtNum, fmtClock, cell } from './dom.js';

let specs = null;

async function dashboards() {
  if (!specs) specs = await getJSON('/api/dashboards');
  return specs;
}

const rangeKey = 'jetsuite.range';

export function mountDashboard(main, slug) {
  let closed = false;
  let close = () => {};
  const charts = new Map();
  const status = h('p', { class: 'live', role: 'status', 'aria-live': 'polite' }, 'connecting…');
  let range = localStorage.getItem(rangeKey) || '15m';

  dashboards().then((all) => {
    if (closed) return;
    const dash = all.find((d) => d.slug === slug);
    const labels = { '5m': 'last 5 min', '15m': 'last 15 min', '1h': 'last hour' };
    const rangeButtons = Object.entries(labels).map(([r, label]) =>
      h('button', { type: 'button', 'data-range': r, 'aria-pressed': String(r === range), onclick: () => setRange(r) }, label),
    );
    const grid = h('div', { class: 'grid' });
    main.append(
      h('div', { class: 'page-head' },
        h('h1', {}, dash.title),
        h('div', { class: 'toolbar', role: 'group', 'aria-label': 'time range' }, rangeButtons),
        status),
      grid,
    );
    const bodies = new Map();
    for (const p of dash.panels) {
      const body = h('div', { class: `panel-body kind-${p.Kind}` });
      const note = h('p', { class: 'panel-note' });
      const sec = h('section', {
        class: 'panel', 'data-panel-id': p.id, 'data-state': 'empty', 'aria-labelledby': p.id + '-title',
        style: `--x:${p.Grid.X + 1};--w:${p.Grid.W};--h:${p.Grid.H}`,
      },
      h('h2', { id: p.id + '-title' }, p.Title),
      h('p', { class: 'panel-src' }, describe(p)),
      body, note);
      grid.append(sec);
      bodies.set(p.id, { p, sec, body, note });
    }

    function setRange(r) {
      range = r;
      localStorage.setItem(rangeKey, r);
      rangeButtons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.range === r)));
      connect();
    }

    function connect() {
      close();
      close = events(`/api/dashboards/${slug}/events?range=${range}`, {
        panels: (ev) => {
          status.textContent = `live · updated ${fmtClock(ev.to)}`;
          for (const d of ev.panels) {
            const b = bodies.get(d.id);
            if (b) render(b, d, ev, charts);
          }
        },
      }, (state) => {
        if (state === 'reconnecting') status.textContent = 'reconnecting…';
      });
    }
    connect();
  }).catch((e) => main.append(h('p', { class: 'error', role: 'alert' }, `could not load the dashboards: ${e.message}`)));

  return () => {
    closed = true;
    close();
    for (const c of charts.values()) c.destroy();
  };
}

// describe says what a panel asks: the metric, the buckets, the source.
function describe(p) {
  const m = p.Kind === 'search' ? `newest documents (${p.Columns.join(', ')})` : p.Metric.Type === 'count' ? 'count' : `${p.Metric.Type}(${p.Metric.Field})`;
  const b = (p.Buckets || []).map((x) => (x.Type === 'terms' ? `top ${x.Size} ${x.Field}` : `per ${x.Interval || 'auto'} of ${x.Field}`));
  return [m, ...b].join(' · ') + ` — from ${p.Source}`;
}

function hasData(d) {
  return (d.series && d.series.some((s) => s.points.length > 0)) || (d.rows && d.rows.length > 0) || (d.stats && d.stats.length > 0 && d.docs > 0);
}

function render(b, d, ev, charts) {
  const { p, sec, body, note } = b;
  sec.dataset.docs = d.docs;
  if (d.error) {
    sec.dataset.state = 'error';
    note.textContent = d.error;
    return;
  }
  const ok = hasData(d);
  sec.dataset.state = ok ? 'data' : 'empty';
  note.textContent = ok ? '' : 'no data in this range yet';
  switch (p.Kind) {
    case 'timeseries':
    case 'bars':
    case 'area': {
      let c = charts.get(p.id);
      if (!c) {
        c = new Chart(body, p.Kind, { points: p.Points });
        charts.set(p.id, c);
      }
      c.update(d.series || [], ev.from, ev.to);
      const last = (d.series || []).map((s) => `${s.name || 'value'} ${fmtNum(s.points.length ? s.points[s.points.length - 1][1] : null)}`);
      body.setAttribute('role', 'img');
      body.setAttribute('aria-label', `${p.Title}: ${last.length} series; latest ${last.slice(0, 10).join(', ')}`);
      break;
    }
    case 'table': {
      const headers = p.headers || [...p.Buckets.map((x) => x.Field), p.Metric.Type];
      body.replaceChildren(table(headers, d.rows || [], (r) => r.map((v) => fmtNum(v)), p.Title));
      break;
    }
    case 'search': {
      const headers = [p.TimeField === 'EXTRACT_TS' ? 'Time' : p.TimeField, ...p.Columns];
      body.replaceChildren(table(headers, d.rows || [], (r) => [fmtTime(r[0]), ...r.slice(1).map(cell)], p.Title));
      break;
    }
    case 'stat': {
      const stats = d.stats || [];
      clear(body).append(
        h('ul', { class: 'stats' }, stats.map((s) => h('li', {}, h('span', { class: 'stat-value' }, fmtNum(s.value)), s.name ? h('span', { class: 'stat-name' }, s.name) : null))),
      );
      break;
    }
  }
}

function table(headers, rows, fmt, caption) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    h('table', {},
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, fmt(r).map((v) => h('td', {}, v)))))));
}
