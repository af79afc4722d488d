// jetsuite's web console: the page shell (navigation, theme, generator controls) and a hash
// router over the pages (#/clickstream, #/ratings, #/pipeline, #/query, #/problems/dlq|late).
import './app.css';
import 'uplot/dist/uPlot.min.css';
import { getJSON, postJSON } from './api.js';
import { h, clear, zone } from './dom.js';
import { mountDashboard } from './dashboard.js';
import { mountPipeline } from './pipeline.js';
import { mountQuery } from './query.js';
import { mountProblems } from './problems.js';

const pages = [
  ['clickstream', 'Click Stream Analysis', (m) => mountDashboard(m, 'click-stream-analysis')],
  ['ratings', 'Ratings Data', (m) => mountDashboard(m, 'ratings-data')],
  ['pipeline', 'Pipeline', mountPipeline],
  ['query', 'Query', mountQuery],
  ['problems', 'Dead letters', (m, sub) => mountProblems(m, sub === 'late' ? 'late' : 'dlq')],
];

// Theme: the system's unless chosen here (kept in localStorage).
const themeKey = 'jetsuite.theme';
function applyTheme(t) {
  const dark = t === 'dark' || (t === 'auto' && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  window.dispatchEvent(new Event('themechange'));
}

function shell() {
  const nav = h('nav', { class: 'nav', 'aria-label': 'pages' },
    h('ul', {}, pages.map(([id, label]) => h('li', {}, h('a', { href: `#/${id}`, 'data-page': id }, label)))));
  let theme = localStorage.getItem(themeKey) || 'auto';
  const themeBtn = h('button', { type: 'button', class: 'theme', onclick: () => {
    theme = { auto: 'light', light: 'dark', dark: 'auto' }[theme];
    localStorage.setItem(themeKey, theme);
    themeBtn.textContent = `theme: ${theme}`;
    applyTheme(theme);
  } }, `theme: ${theme}`);
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => applyTheme(theme));
  applyTheme(theme);
  const gen = h('div', { class: 'generator', role: 'group', 'aria-label': 'generator' });
  const info = h('span', { class: 'muted' });
  const header = h('header', { class: 'top' },
    h('a', { class: 'skip', href: '#main', onclick: (e) => {
      e.preventDefault();
      document.getElementById('main').focus();
    } }, 'Skip to content'),
    h('div', { class: 'brand' }, h('strong', {}, 'jetsuite'), info),
    nav, gen, themeBtn);
  const main = h('main', { id: 'main', tabindex: '-1' });
  const footer = h('footer', {}, h('span', { id: 'zone' }, `Times in ${zone}`), ' · ', h('a', { href: '/metrics' }, 'metrics'), ' · ', h('a', { href: '/readyz' }, 'readiness'));
  document.body.append(header, main, footer);
  getJSON('/api/info').then((i) => {
    info.textContent = ` ${i.command}`;
    info.title = `pipeline: ${i.files.join(', ')}`;
  }).catch(() => {});
  generator(gen);
  return { nav, main };
}

// generator shows pause/resume where the generator runs (GET /generator/status answers).
async function generator(el) {
  let st;
  try {
    st = await getJSON('/generator/status');
  } catch {
    return; // no generator in this process
  }
  const label = h('span', { role: 'status', 'aria-live': 'polite' });
  const btn = h('button', { type: 'button', onclick: async () => {
    btn.disabled = true;
    try {
      st = await postJSON(paused() ? '/generator/resume' : '/generator/pause');
      show();
    } catch (e) {
      label.textContent = `generator: ${e.message}`;
    } finally {
      btn.disabled = false;
    }
  } });
  const paused = () => st.quickstarts.length > 0 && st.quickstarts.every((q) => q.paused);
  const click = () => st.quickstarts.find((q) => q.name === 'clickstream');
  // The clicks' rate (the others keep theirs): POST /generator/rate.
  const rate = h('input', { id: 'gen-rate', type: 'number', min: '0', max: '100000', step: 'any', inputmode: 'decimal' });
  const rateForm = h('form', { class: 'rate', onsubmit: async (e) => {
    e.preventDefault();
    try {
      st = await postJSON('/generator/rate', { quickstart: 'clickstream', rate: +rate.value });
      show();
    } catch (err) {
      label.textContent = `generator: ${err.message}`;
    }
  } }, h('label', { for: 'gen-rate' }, 'clicks/s'), rate, h('button', { type: 'submit' }, 'Set'));
  const show = () => {
    const c = click();
    label.textContent = `generator ${paused() ? 'paused' : 'running'}`;
    btn.textContent = paused() ? 'Resume' : 'Pause';
    el.dataset.paused = String(paused());
    if (c && document.activeElement !== rate) rate.value = String(c.rate);
  };
  show();
  el.append(label, btn, click() ? rateForm : null);
  setInterval(async () => {
    try {
      st = await getJSON('/generator/status');
      show();
    } catch {
      // the process is restarting: try again at the next tick
    }
  }, 5000);
}

function start() {
  const { nav, main } = shell();
  let unmount = null;
  const route = () => {
    const [, id = 'clickstream', sub] = (location.hash || '#/clickstream').split('/');
    const page = pages.find((p) => p[0] === id) || pages[0];
    for (const a of nav.querySelectorAll('a')) {
      if (a.dataset.page === page[0]) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (unmount) unmount();
    clear(main);
    document.title = `${page[1]} · jetsuite`;
    unmount = page[2](main, sub);
  };
  window.addEventListener('hashchange', () => {
    route();
    main.focus({ preventScroll: true });
  });
  // A theme change restyles the charts: draw the page again.
  window.addEventListener('themechange', () => {
    if (unmount) route();
  });
  route();
}

start();
