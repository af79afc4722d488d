// The console's end-to-end check in headless Chromium (Debian's package, driven by
// playwright-core), against a running jetsuite. Run by TestConsoleInBrowser
// (console/browser_test.go), which starts a real `jetsuite all` and passes:
//   BASE_URL    the console, e.g. http://127.0.0.1:8080
//   NODES       the pipeline's node ids (JSON array) the graph must show
//   SHOTS       a directory for the screenshots
//   CHROMIUM    the browser (default /usr/bin/chromium)
// It prints "ok <what> <ms>" per check and "publish-dead-letter" when the Dead letters page is
// open, then waits for the dead letter the test publishes (its body contains MARKER, read from
// stdin's first line) to appear with its reason. Exit code 0: every check passed.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const base = process.env.BASE_URL;
const nodes = JSON.parse(process.env.NODES || '[]');
const shots = process.env.SHOTS;
const timeZone = 'Pacific/Auckland'; // not the machine's zone: the page must use the browser's
const t0 = Date.now();
const ok = (what) => console.log(`ok ${what} ${Date.now() - t0}`);

const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
let failed = false;
let ctx = null;
try {
  ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: timeZone, colorScheme: 'light' });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });

  // The dashboards: every panel shows data within 60 s of opening the page.
  for (const [hash, slug, n] of [['#/clickstream', 'click-stream-analysis', 6], ['#/ratings', 'ratings-data', 6]]) {
    const opened = Date.now();
    await page.goto(`${base}/${hash}`);
    await page.waitForFunction(
      ([slug, n]) => {
        const ps = [...document.querySelectorAll(`[data-panel-id^="${slug}-"]`)];
        return ps.length === n && ps.every((p) => p.dataset.state === 'data');
      },
      [slug, n],
      { timeout: 60_000, polling: 500 },
    ).catch(async (e) => {
      const states = await page.$$eval('[data-panel-id]', (ps) => ps.map((p) => `${p.dataset.panelId}=${p.dataset.state}(${p.dataset.docs})`));
      throw new Error(`${slug}: not every panel has data after 60 s: ${states.join(' ')}: ${e.message}`);
    });
    ok(`dashboard ${slug}: ${n} panels with data after ${Date.now() - opened} ms`);
    // Live: the panels are sent again as the tables change, without a reload.
    const before = await page.textContent('.live');
    await page.waitForFunction((b) => document.querySelector('.live').textContent !== b, before, { timeout: 15_000 });
    ok(`dashboard ${slug}: updated live`);
    if (slug === 'click-stream-analysis') {
      // Another range: the stream starts over with it and every panel still has data.
      await page.click('button[data-range="5m"]');
      await page.waitForFunction(() => document.querySelector('button[data-range="5m"]').getAttribute('aria-pressed') === 'true', null, { timeout: 5_000 });
      const at = await page.textContent('.live');
      await page.waitForFunction(
        (at) => document.querySelector('.live').textContent !== at && [...document.querySelectorAll('[data-panel-id]')].every((p) => p.dataset.state === 'data'),
        at,
        { timeout: 30_000 },
      );
      ok('dashboard range: last 5 min');
    }
    await page.waitForTimeout(300); // let the charts finish drawing before the picture
    await page.screenshot({ path: `${shots}/console-${slug}.png`, fullPage: true });
  }
  // The generator's controls: pause and resume, and the clicks' rate.
  await page.click('.generator button:has-text("Pause")');
  await page.waitForSelector('.generator[data-paused="true"]', { timeout: 10_000 });
  await page.click('.generator button:has-text("Resume")');
  await page.waitForSelector('.generator[data-paused="false"]', { timeout: 10_000 });
  await page.fill('#gen-rate', '30');
  await page.press('#gen-rate', 'Enter');
  await page.waitForFunction(() => fetch('/generator/status').then((r) => r.json()).then((st) => st.quickstarts.find((q) => q.name === 'clickstream').rate === 30), null, { timeout: 10_000, polling: 250 });
  ok('generator: pause, resume, rate');

  const zone = await page.textContent('#zone');
  if (!zone.includes(timeZone)) throw new Error(`times not in the browser's zone: ${zone}`);
  ok(`times in the browser's zone (${timeZone})`);

  // Keyboard: the first Tab stops reach the skip link and the page links.
  await page.goto(`${base}/#/clickstream`);
  await page.reload(); // a fresh document: focus starts at the top
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.closest('nav') !== null);
  if (!focused) throw new Error('Tab does not reach the navigation');
  ok('keyboard reaches the navigation');

  // The pipeline: every node of the plan, with numbers; Enter on a node opens its statement
  // and newest rows.
  await page.goto(`${base}/#/pipeline`);
  await page.waitForSelector('svg.graph [data-node]', { timeout: 30_000 });
  const shown = await page.$$eval('svg.graph [data-node]', (els) => els.map((e) => e.dataset.node));
  const missing = nodes.filter((id) => !shown.includes(id));
  if (missing.length > 0 || shown.length !== nodes.length) throw new Error(`graph nodes: missing ${missing.join(', ')}; shown ${shown.length}, plan ${nodes.length}`);
  ok(`pipeline graph: all ${nodes.length} nodes`);
  // The generator writes about 20 clicks a second: the source's rate is measured, not 0.
  await page.waitForFunction(() => /^[1-9][\d.,]*\/s/.test(document.querySelector('[data-node="CLICKSTREAM"] .node-stats').textContent), null, { timeout: 30_000 });
  ok(`pipeline graph: numbers (CLICKSTREAM ${await page.textContent('[data-node="CLICKSTREAM"] .node-stats')})`);
  await page.focus('[data-node="EVENTS_PER_MIN"]');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => {
    const d = document.querySelector('.details');
    return d.querySelector('h2')?.textContent === 'EVENTS_PER_MIN' && /CREATE TABLE EVENTS_PER_MIN/i.test(d.querySelector('pre.sql')?.textContent) && d.querySelectorAll('.messages li').length > 0;
  }, null, { timeout: 30_000 });
  ok('pipeline node: statement and newest rows');
  await page.screenshot({ path: `${shots}/console-pipeline.png` });

  // Query: a pull query returns rows and ends; a push query keeps adding rows.
  await page.goto(`${base}/#/query`);
  await page.fill('#sql', 'SELECT * FROM EVENTS_PER_MIN');
  await page.click('.query-form button[type=submit]');
  await page.waitForFunction(() => +document.querySelector('.results').dataset.rows > 0 && /rows in/.test(document.querySelector('.live').textContent), null, { timeout: 30_000 });
  ok(`pull query: ${await page.getAttribute('.results', 'data-rows')} rows`);
  await page.fill('#sql', 'SELECT USERID, USERNAME, IP, REQUEST, STATUS FROM USER_CLICKSTREAM EMIT CHANGES');
  await page.keyboard.press('Control+Enter');
  await page.waitForFunction(() => +document.querySelector('.results').dataset.rows >= 3, null, { timeout: 30_000 });
  const first = +(await page.getAttribute('.results', 'data-rows'));
  await page.waitForFunction((n) => +document.querySelector('.results').dataset.rows >= n + 5, first, { timeout: 30_000 });
  ok(`push query: rows keep arriving (${await page.getAttribute('.results', 'data-rows')})`);
  await page.screenshot({ path: `${shots}/console-query.png` });
  await page.click('text=Stop');
  await page.waitForFunction(() => /stopped after/.test(document.querySelector('.live').textContent), null, { timeout: 10_000 });
  ok('push query: stopped');

  // Dead letters: the page is open, then the test publishes one; it appears with its reason.
  await page.goto(`${base}/#/problems/dlq`);
  await page.waitForFunction(() => /live/.test(document.querySelector('.live').textContent), null, { timeout: 30_000 });
  console.log('publish-dead-letter');
  const marker = (await lines.next()).value;
  await page.waitForFunction((m) => [...document.querySelectorAll('table.problems tbody tr')].some((tr) => tr.textContent.includes(m) && tr.dataset.reason === 'not_json'), marker, { timeout: 60_000 });
  ok('dead letter shown with its reason');
  await page.screenshot({ path: `${shots}/console-dead-letters.png` });

  // A phone's width, dark.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, timezoneId: timeZone, colorScheme: 'dark', deviceScaleFactor: 1 });
  const p2 = await phone.newPage();
  await p2.goto(`${base}/#/ratings`);
  await p2.waitForFunction(() => [...document.querySelectorAll('[data-panel-id]')].filter((p) => p.dataset.state === 'data').length >= 3, null, { timeout: 60_000 });
  const wide = await p2.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 390 + 1) throw new Error(`the page is wider than a phone: ${wide}px`);
  if ((await p2.getAttribute('html', 'data-theme')) !== 'dark') throw new Error('no dark theme for a dark system');
  ok('phone width, dark');
  await p2.screenshot({ path: `${shots}/console-phone-dark.png` });

  if (errors.length > 0) throw new Error(`errors in the page: ${errors.join('; ')}`);
  ok('no errors in the page');
} catch (e) {
  failed = true;
  console.log(`FAIL ${e.message}`);
  // What the page showed when it failed, for the one who reads the failure.
  for (const p of ctx ? ctx.pages() : []) await p.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
  stdin.close();
}
process.exit(failed ? 1 : 0);
