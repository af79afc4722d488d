// The pipeline page: the plan as a layered graph (sources on the left, sinks on the right),
// every node with its numbers from the server's event stream; a node opens its statement and
// its newest rows or messages.
import { events, getJSON } from './api.js';
import { h, s, clear, fmtNum, fmtTime, fmtAgo } from './dom.js';

const W = 236; // node size and gaps, in SVG units
const H = 66;
const GX = 70;
const GY = 16;

const kindLabel = { source: 'source stream', statement: 'stream (statement)', table: 'table', sink: 'sink', external: 'runs outside' };

// layout assigns each node a layer (the longest path from a source; sinks last) and an order
// within its layer (barycentres of the neighbours, a few sweeps each way), then coordinates.
export function layout(nodes, edges) {
  const preds = new Map(nodes.map((n) => [n.id, []]));
  const succs = new Map(nodes.map((n) => [n.id, []]));
  for (const e of edges) {
    if (preds.has(e.to) && succs.has(e.from)) {
      preds.get(e.to).push(e.from);
      succs.get(e.from).push(e.to);
    }
  }
  const layer = new Map();
  const depth = (id, seen = new Set()) => {
    if (layer.has(id)) return layer.get(id);
    if (seen.has(id)) return 0; // a cycle cannot happen in a plan; be safe anyway
    seen.add(id);
    const ps = preds.get(id);
    const d = ps.length ? 1 + Math.max(...ps.map((p) => depth(p, seen))) : 0;
    layer.set(id, d);
    return d;
  };
  nodes.forEach((n) => depth(n.id));
  const maxInner = Math.max(0, ...nodes.filter((n) => n.kind !== 'sink').map((n) => layer.get(n.id)));
  nodes.filter((n) => n.kind === 'sink').forEach((n) => layer.set(n.id, maxInner + 1));
  // Sources with no readers stay left; a source feeding only a deep node stays left too.
  const layers = [];
  for (const n of nodes) {
    const l = layer.get(n.id);
    (layers[l] = layers[l] || []).push(n.id);
  }
  const pos = new Map();
  const index = () => layers.forEach((ids) => ids.forEach((id, i) => pos.set(id, i)));
  index();
  const bary = (id, nbrs) => {
    const ps = nbrs.get(id).filter((p) => pos.has(p));
    return ps.length ? ps.reduce((a, p) => a + pos.get(p), 0) / ps.length : pos.get(id);
  };
  for (let sweep = 0; sweep < 4; sweep++) {
    for (let l = 1; l < layers.length; l++) {
      if (!layers[l]) continue;
      layers[l].sort((a, b) => bary(a, preds) - bary(b, preds));
      index();
    }
    for (let l = layers.length - 2; l >= 0; l--) {
      if (!layers[l]) continue;
      layers[l].sort((a, b) => bary(a, succs) - bary(b, succs));
      index();
    }
  }
  const tallest = Math.max(...layers.map((ids) => (ids ? ids.length : 0)));
  const xy = new Map();
  layers.forEach((ids, l) => {
    if (!ids) return;
    const offset = ((tallest - ids.length) * (H + GY)) / 2;
    ids.forEach((id, i) => xy.set(id, { x: l * (W + GX), y: offset + i * (H + GY) }));
  });
  return { xy, width: layers.length * (W + GX) - GX, height: tallest * (H + GY) - GY, layers };
}

export function mountPipeline(main) {
  let closed = false;
  let close = () => {};
  const status = h('p', { class: 'live', role: 'status', 'aria-live': 'polite' }, 'connecting…');
  const details = h('aside', { class: 'details', 'aria-label': 'node details', 'aria-live': 'polite' },
    h('p', { class: 'muted' }, 'Select a node (click, or Tab to it and press Enter) to see its statement and newest rows.'));
  const wrap = h('div', { class: 'graph-wrap', role: 'region', 'aria-label': 'pipeline graph', tabindex: '0' });
  main.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Pipeline'), status),
    h('p', { class: 'muted legend' },
      Object.entries(kindLabel).map(([k, v]) => h('span', { class: `chip kind-${k}` }, v)),
      h('span', { class: 'chip edge-join' }, 'join'), h('span', { class: 'chip edge-fused' }, 'fused into the windower')),
    h('div', { class: 'pipeline' }, wrap, details),
  );
  const boxes = new Map();
  let graph = null;
  let stats = {};
  let selected = null;

  getJSON('/api/pipeline').then((g) => {
    if (closed) return;
    graph = g;
    const { xy, width, height } = layout(g.nodes, g.edges);
    const svg = s('svg', { viewBox: `-4 -4 ${width + 8} ${height + 8}`, width: width + 8, height: height + 8, class: 'graph', role: 'group', 'aria-label': `${g.nodes.length} nodes` });
    const byId = new Map(g.nodes.map((n) => [n.id, n]));
    const edgeLayer = s('g', { class: 'edges' });
    for (const e of g.edges) {
      const a = xy.get(e.from);
      const b = xy.get(e.to);
      if (!a || !b) continue;
      const x1 = a.x + W;
      const y1 = a.y + H / 2;
      const x2 = b.x;
      const y2 = b.y + H / 2;
      const mx = (x1 + x2) / 2;
      const fused = e.kind === 'input' && byId.get(e.to).fused_into;
      edgeLayer.append(s('path', { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: `edge edge-${e.kind}${fused ? ' edge-fused' : ''}`, 'data-from': e.from, 'data-to': e.to }));
    }
    svg.append(edgeLayer);
    for (const n of g.nodes) {
      const p = xy.get(n.id);
      const line2 = s('text', { x: 10, y: 38, class: 'node-sub' }, nodeSub(n));
      const line3 = s('text', { x: 10, y: 56, class: 'node-stats' }, '…');
      const box = s('g', {
        class: `node kind-${n.kind}`, transform: `translate(${p.x},${p.y})`, tabindex: '0', role: 'button',
        'data-node': n.id, 'aria-label': `${kindLabel[n.kind]} ${n.name}`,
        onclick: () => select(n.id),
        onkeydown: (ev) => {
          if (ev.key === 'Enter' || ev.key === ' ') {
            ev.preventDefault();
            select(n.id);
          }
        },
      },
      s('title', {}, `${kindLabel[n.kind]} ${n.name}`),
      s('rect', { width: W, height: H, rx: 8 }),
      s('text', { x: 10, y: 20, class: 'node-name' }, clip(n.name, 27)),
      line2, line3);
      boxes.set(n.id, { box, line3, n });
      svg.append(box);
    }
    wrap.append(svg);
    close = events('/api/pipeline/events', {
      stats: (ev) => {
        stats = ev.nodes || {};
        status.textContent = ev.error ? ev.error : `live · updated ${fmtTime(Date.parse(ev.time))}`;
        for (const [id, b] of boxes) update(b, stats[id]);
        if (selected) renderStats(selected);
      },
    }, (st) => {
      if (st === 'reconnecting') status.textContent = 'reconnecting…';
    });
  }).catch((e) => main.append(h('p', { class: 'error', role: 'alert' }, `could not load the pipeline: ${e.message}`)));

  function update(b, st) {
    if (!st) {
      b.line3.textContent = b.n.kind === 'external' ? 'outside jetsuite' : '';
      return;
    }
    const parts = [`${st.rate == null ? '…' : fmtNum(st.rate)}/s`, `lag ${st.lag == null ? '–' : fmtNum(st.lag)}`];
    if (b.n.kind === 'table' && b.n.window) parts.push(`late ${fmtNum(st.late)}`);
    if (st.dead_letters) parts.push(`dlq ${fmtNum(st.dead_letters)}`);
    b.line3.textContent = parts.join(' · ');
    b.box.classList.toggle('has-error', !!st.last_error);
    b.box.classList.toggle('has-dlq', st.dead_letters > 0);
    b.box.setAttribute('aria-label', `${kindLabel[b.n.kind]} ${b.n.name}: ${parts.join(', ')}${st.last_error ? ', has an error' : ''}`);
  }

  const statsBox = h('div');
  function renderStats(id) {
    const st = stats[id];
    clear(statsBox);
    if (!st) return;
    statsBox.append(
      h('dl', { class: 'kv' },
        h('dt', {}, 'rate'), h('dd', {}, st.rate == null ? 'measuring…' : `${fmtNum(st.rate)} per second`),
        h('dt', {}, 'total'), h('dd', {}, fmtNum(st.total)),
        h('dt', {}, 'lag'), h('dd', {}, st.lag == null ? 'no consumer (not running anywhere)' : fmtNum(st.lag)),
        h('dt', {}, 'late events'), h('dd', {}, fmtNum(st.late)),
        h('dt', {}, 'dead letters'), h('dd', {}, fmtNum(st.dead_letters)),
        h('dt', {}, 'last error'), h('dd', { class: st.last_error ? 'error' : '' }, st.last_error ? `${st.last_error.level} ${fmtTime(Date.parse(st.last_error.time))} (${fmtAgo(Date.parse(st.last_error.time))}): ${st.last_error.message} ${Object.entries(st.last_error.attrs || {}).map(([k, v]) => `${k}=${v}`).join(' ')}` : 'none'),
      ),
      st.consumers && st.consumers.length ? h('p', { class: 'muted' }, 'consumers: ', st.consumers.map((c) => `${c.name} on ${c.stream} (${c.pending} pending, ${c.ack_pending} unacked)`).join('; ')) : null,
    );
  }

  async function select(id) {
    selected = id;
    for (const [nid, b] of boxes) b.box.classList.toggle('selected', nid === id);
    const n = graph.nodes.find((x) => x.id === id);
    const rows = h('div', { class: 'newest' }, h('p', { class: 'muted' }, 'loading the newest rows…'));
    clear(details).append(
      h('h2', {}, n.name),
      h('p', { class: 'muted' }, [kindLabel[n.kind], n.step, n.service && `run by ${n.service}`, n.fused_into && `fused into the windower's task on ${n.fused_into}`, n.class].filter(Boolean).join(' · ')),
      h('dl', { class: 'kv' },
        n.stream && [h('dt', {}, 'stream'), h('dd', {}, n.stream + (n.subject ? ` (subject ${n.subject})` : ''))],
        n.bucket && [h('dt', {}, 'KV bucket'), h('dd', {}, n.bucket)],
        n.key && [h('dt', {}, 'key'), h('dd', {}, n.key)],
        n.window && [h('dt', {}, 'window'), h('dd', {}, n.window)],
        n.pos && [h('dt', {}, 'declared at'), h('dd', {}, n.pos)],
      ),
      h('h3', {}, 'Statement'),
      h('pre', { class: 'sql', tabindex: '0' }, n.sql),
      statsBox,
      h('h3', {}, n.kind === 'table' ? 'Newest rows' : 'Newest messages'),
      rows,
    );
    renderStats(id);
    details.focus?.();
    if (n.kind === 'external') {
      clear(rows).append(h('p', { class: 'muted' }, 'This connector runs outside jetsuite; see the streams it writes.'));
      return;
    }
    try {
      const res = await getJSON(`/api/nodes/${encodeURIComponent(id)}/newest?n=20`);
      if (selected !== id) return;
      clear(rows);
      for (const r of res) {
        rows.append(h('div', {},
          res.length > 1 ? h('h4', {}, r.object) : null,
          r.error ? h('p', { class: 'error' }, r.error) : null,
          r.messages.length === 0 ? h('p', { class: 'muted' }, 'nothing yet') : null,
          h('ol', { class: 'messages' }, r.messages.map((m) => h('li', {},
            h('span', { class: 'muted' }, `#${m.seq} · ${fmtTime(m.time)}${m.key ? ` · key ${m.key}` : ''}`),
            h('code', {}, m.value ? JSON.stringify(m.value) : m.text))))));
      }
    } catch (e) {
      clear(rows).append(h('p', { class: 'error' }, e.message));
    }
  }

  return () => {
    closed = true;
    close();
  };
}

function nodeSub(n) {
  const what = n.kind === 'sink' ? `${n.class} sink` : n.kind === 'external' ? 'source connector' : n.window ? `table, ${n.window.toLowerCase()}` : kindLabel[n.kind];
  return clip(n.service ? `${what} · ${n.service}` : what, 36);
}

function clip(t, n) {
  return t.length > n ? t.slice(0, n - 1) + '…' : t;
}
