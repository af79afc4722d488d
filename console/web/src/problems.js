// Dead letters and late events: what the pipeline rejected or could no longer count, newest
// first, with the reason and where the input came from (stream, subject, sequence).
import { events } from './api.js';
import { h, clear, fmtTime } from './dom.js';

const keep = 2000;

export function mountProblems(main, kind) {
  const tabs = [['dlq', 'Dead letters'], ['late', 'Late events']].map(([k, label]) =>
    h('a', { href: `#/problems/${k}`, class: 'tab', 'aria-current': k === kind ? 'page' : null }, label));
  const filter = h('input', { id: 'problem-filter', type: 'search', placeholder: 'reason, stream, text…' });
  const status = h('p', { class: 'live', role: 'status', 'aria-live': 'polite' }, 'connecting…');
  const tbody = h('tbody');
  const headers = kind === 'dlq'
    ? ['time', 'reason', 'error', 'service', 'source (stream · subject · seq)', 'message']
    : ['time', 'table', 'reason', 'source (stream · seq)', 'message'];
  main.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Dead letters and late events'), status),
    h('nav', { class: 'tabs', 'aria-label': 'kind' }, tabs),
    h('p', { class: 'muted' }, kind === 'dlq'
      ? 'Input that could not be processed goes to dlq.<stream> with the reason in its headers; the pipeline goes on.'
      : 'Events later than their window\'s grace period go to late.<TABLE>: counted nowhere else, dropped by ksqlDB.'),
    h('div', { class: 'toolbar' }, h('label', { for: 'problem-filter' }, 'Filter'), filter),
    h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': kind === 'dlq' ? 'dead letters' : 'late events' },
      h('table', { class: 'problems' }, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))), tbody)),
  );
  let count = 0;
  const applyFilter = (tr) => {
    const q = filter.value.trim().toLowerCase();
    tr.hidden = q !== '' && !tr.textContent.toLowerCase().includes(q);
  };
  filter.addEventListener('input', () => [...tbody.rows].forEach(applyFilter));

  const close = events(`/api/problems/${kind}/events?n=500`, {
    problems: (items) => {
      for (const p of items) {
        count++;
        const body = p.value ? JSON.stringify(p.value) : p.text || '';
        const message = h('details', {}, h('summary', {}, preview(body, p.size)), h('pre', {}, body), p.headers ? h('pre', { class: 'muted' }, Object.entries(p.headers).map(([k, v]) => `${k}: ${v}`).join('\n')) : null);
        const cells = kind === 'dlq'
          ? [fmtTime(p.time), h('span', { class: 'reason' }, p.reason), p.error, p.service, `${p.source_stream || '?'} · ${p.source_subject || '?'} · #${p.source_seq || '?'}`, message]
          : [fmtTime(p.time), p.table, h('span', { class: 'reason' }, p.reason), `${p.source_stream || '?'} · #${p.source_seq || '?'}`, message];
        const tr = h('tr', { 'data-reason': p.reason, 'data-seq': p.seq }, cells.map((c) => h('td', {}, c)));
        applyFilter(tr);
        tbody.prepend(tr);
        if (tbody.rows.length > keep) tbody.lastElementChild.remove();
      }
      status.textContent = `${count} shown · live`;
    },
    ready: () => {
      status.textContent = count ? `${count} shown · live` : 'none yet · live';
    },
    error: (e) => {
      status.textContent = e.error;
    },
  }, (st) => {
    if (st === 'reconnecting') {
      // The stream starts over with the newest ones after a reconnect.
      clear(tbody);
      count = 0;
      status.textContent = 'reconnecting…';
    }
  });
  return close;
}

function preview(body, size) {
  const t = body.length > 80 ? body.slice(0, 79) + '…' : body;
  return `${t || '(empty)'} (${size} bytes)`;
}
