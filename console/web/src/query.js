// The query page: pull and push queries through POST /query. A push query (EMIT CHANGES)
// keeps adding rows, newest first, until it reaches its LIMIT or is stopped.
import { query } from './api.js';
import { h, clear, cell } from './dom.js';

const examples = [
  ['pull: a table', 'SELECT * FROM EVENTS_PER_MIN'],
  ['pull: one key', "SELECT * FROM CLICK_USER_SESSIONS WHERE USERNAME = 'Ferd88'"],
  ['pull: a stream', 'SELECT FULL_NAME, STARS, MESSAGE FROM RATINGS_WITH_CUSTOMER_DATA LIMIT 20'],
  ['push: a stream', 'SELECT USERID, USERNAME, IP, REQUEST, STATUS FROM USER_CLICKSTREAM EMIT CHANGES'],
  ['push: a table', 'SELECT * FROM ERRORS_PER_MIN_ALERT EMIT CHANGES'],
  ['push: the original', "SELECT * FROM UNHAPPY_PLATINUM_CUSTOMERS EMIT CHANGES"],
];

// Rows kept on the page; older ones are dropped (the count says how many arrived).
const keepRows = 1000;
const sqlKey = 'jetsuite.query';

export function mountQuery(main) {
  let abort = null;
  const box = h('textarea', { id: 'sql', rows: '4', spellcheck: 'false', 'aria-describedby': 'sql-help' });
  box.value = localStorage.getItem(sqlKey) || examples[0][1];
  const limit = h('input', { id: 'limit', type: 'number', min: '0', step: '1', value: '0', inputmode: 'numeric' });
  const run = h('button', { type: 'submit', class: 'primary' }, 'Run');
  const stop = h('button', { type: 'button', disabled: true, onclick: () => abort && abort.abort() }, 'Stop');
  const status = h('p', { class: 'live', role: 'status', 'aria-live': 'polite' });
  const out = h('div', { class: 'table-wrap results', tabindex: '0', role: 'region', 'aria-label': 'query results' });
  const pick = h('select', { id: 'examples', onchange: () => {
    if (pick.value) box.value = pick.value;
    pick.selectedIndex = 0;
    box.focus();
  } }, h('option', { value: '' }, 'Examples…'), examples.map(([label, sql]) => h('option', { value: sql }, `${label}: ${sql}`)));

  const form = h('form', { class: 'query-form', onsubmit: (e) => {
    e.preventDefault();
    start();
  } },
  h('label', { for: 'sql' }, 'Query'),
  box,
  h('p', { id: 'sql-help', class: 'muted' }, 'A pull query reads what a table or stream holds now; add EMIT CHANGES for a push query that keeps sending rows. Ctrl+Enter runs.'),
  h('div', { class: 'toolbar' },
    run, stop,
    h('label', { for: 'limit' }, 'limit (0: none)'), limit,
    h('label', { for: 'examples', class: 'sr-only' }, 'example queries'), pick));
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      start();
    }
  });
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Query')), form, status, out);

  async function start() {
    if (abort) abort.abort();
    const ctl = new AbortController();
    abort = ctl;
    const sql = box.value.trim();
    localStorage.setItem(sqlKey, sql);
    const push = /\bEMIT\s+CHANGES\b/i.test(sql);
    let cols = [];
    let n = 0;
    const tbody = h('tbody');
    const thead = h('thead');
    clear(out).append(h('table', { 'data-kind': push ? 'push' : 'pull' }, thead, tbody));
    out.dataset.rows = '0';
    status.textContent = push ? 'push query: waiting for rows…' : 'running…';
    stop.disabled = false;
    const t0 = performance.now();
    try {
      await query(sql, {
        signal: ctl.signal,
        limit: +limit.value || 0,
        onHeader: (c) => {
          cols = c;
          thead.replaceChildren(h('tr', {}, cols.map((x) => h('th', { scope: 'col' }, x))));
        },
        onRow: (r) => {
          n++;
          const tr = h('tr', {}, cols.map((c) => h('td', {}, cell(r[c]))));
          if (push) tbody.prepend(tr);
          else tbody.append(tr);
          if (tbody.childElementCount > keepRows) (push ? tbody.lastElementChild : tbody.firstElementChild).remove();
          out.dataset.rows = String(n);
          if (push) status.textContent = `push query: ${n} rows so far (newest first)`;
        },
      });
      const secs = ((performance.now() - t0) / 1000).toFixed(2);
      status.textContent = ctl.signal.aborted ? `stopped after ${n} rows` : `${n} rows in ${secs} s${push ? ' (LIMIT reached)' : ''}`;
    } catch (e) {
      if (!ctl.signal.aborted) {
        status.textContent = '';
        out.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message));
      }
    } finally {
      if (abort === ctl) {
        abort = null;
        stop.disabled = true;
      }
    }
  }

  return () => abort && abort.abort();
}
