// Ramp: the highest click rate the pipeline sustains. Clicks go in at rising plateaus
// (events per second); a monitor reads the pipeline's total lag (every consumer of the plan)
// once a second. A plateau is sustained when, over its last RAMP_WINDOW seconds:
//   - the lag stayed bounded: never above LAG_BOUND_S seconds of input (rate x LAG_BOUND_S),
//   - and did not grow: the mean of the window's last 5 readings (fewer in a short window) is
//     at most LAG_GROWTH_S seconds of input above the mean of its first 5,
//   - every stream the plan's steps read had a consumer,
//   - and k6 published at least 95 % of the rate (else k6, not the pipeline, is the limit).
// At the first plateau that fails, the load stops and the result is printed; k6 cannot end a
// scenario early without failing the run (test.abort exits 108), so the rest of the schedule
// runs idle while the pipeline drains. Teardown prints the result again and waits for the
// catch-up.
//
//   NATS_URL (nats://127.0.0.1:4222)  RAMP_LEVELS (comma-separated events/s; default
//   RAMP_START..RAMP_MAX by RAMP_STEP: 2500..25000 by 2500)  RAMP_PLATEAU (40 s)
//   RAMP_WINDOW (30 s)  LAG_BOUND_S (5)  LAG_GROWTH_S (1)  BATCH (100 clicks per iteration)
//   CATCHUP_TIMEOUT (120 s)  SEED (1)  VUS (20)  MAX_VUS (200)  QUERIES_FILE, FUSE
import { check, sleep } from 'k6';
import { Gauge } from 'k6/metrics';
import { envInt, newClient, setupRun, loadStarts, awaitCaughtUp } from './lib.js';

export { handleSummary } from './lib.js';

function levels() {
  if (__ENV.RAMP_LEVELS) {
    return __ENV.RAMP_LEVELS.split(',').map((v) => {
      const n = Number(v.trim());
      if (!Number.isInteger(n) || n <= 0) {
        throw new Error(`RAMP_LEVELS: ${v} is not a rate (events/s)`);
      }
      return n;
    });
  }
  const out = [];
  const step = Math.max(1, envInt('RAMP_STEP', 2500));
  for (let r = envInt('RAMP_START', 2500); r <= envInt('RAMP_MAX', 25000); r += step) {
    out.push(r);
  }
  return out;
}

const LEVELS = levels();
const PLATEAU = envInt('RAMP_PLATEAU', 40);
const WINDOW = Math.min(envInt('RAMP_WINDOW', 30), PLATEAU);
const LAG_BOUND_S = envInt('LAG_BOUND_S', 5);
const LAG_GROWTH_S = envInt('LAG_GROWTH_S', 1);
const BATCH = Math.max(1, envInt('BATCH', 100));
const TOTAL = LEVELS.length * PLATEAU;
const CATCHUP = envInt('CATCHUP_TIMEOUT', 120);

const sustainedRate = new Gauge('jetsuite_sustained_events_per_s');

function stages() {
  const out = [{ target: LEVELS[0], duration: `${PLATEAU}s` }];
  for (const r of LEVELS.slice(1)) {
    out.push({ target: r, duration: '1s' }, { target: r, duration: `${PLATEAU - 1}s` });
  }
  return out;
}

export const options = {
  scenarios: {
    clicks: {
      executor: 'ramping-arrival-rate',
      exec: 'publish',
      startRate: LEVELS[0],
      // `target` iterations per BATCH seconds, BATCH clicks each: `target` clicks a second.
      timeUnit: `${BATCH}s`,
      stages: stages(),
      preAllocatedVUs: envInt('VUS', 20),
      maxVUs: envInt('MAX_VUS', 200),
    },
    // Runs 2 s past the load, to judge the last plateau.
    monitor: { executor: 'constant-vus', exec: 'monitor', vus: 1, duration: `${TOTAL + 2}s`, gracefulStop: '0s' },
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count'],
  setupTimeout: '90s',
  teardownTimeout: `${CATCHUP + 30}s`,
  thresholds: {
    // Some plateau was sustained: 0 means not even the first one.
    jetsuite_sustained_events_per_s: ['value>0'],
    jetsuite_events_failed: ['count==0'],
    checks: ['rate==1'],
    jetsuite_caught_up: ['rate==1'],
  },
};

const client = newClient();

export function setup() {
  const data = setupRun(client, `ramp: ${LEVELS.join(', ')} clicks/s, ${PLATEAU} s each, ` +
    `judged on the last ${WINDOW} s (lag at most ${LAG_BOUND_S} s of input, growing at most ${LAG_GROWTH_S} s), batches of ${BATCH}`, null);
  return loadStarts(client, data);
}

export function publish() {
  if (client.result('halt')) {
    return; // the knee is found; the rest of the schedule publishes nothing
  }
  const b = client.publishClicks(BATCH);
  check(b, { 'clicks acked': (b) => b.acked === BATCH && b.failed === 0 });
}

// The monitor VU's own state (one VU: nothing shared).
const seen = [];
let judged = 0;

function halt(reason) {
  client.setResult('halt', reason);
  console.log(`ramp: stopped: ${reason}`);
  const r = client.result('sustained');
  console.log(r ? `ramp: highest sustained rate: ${r} clicks/s (${client.result('sustainedText')})` : 'ramp: no plateau sustained');
}

function mean(xs) {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

// judge ends plateau i: sustained, unless k6 could not publish its rate or the lag grew.
function judge(i) {
  const r = LEVELS[i];
  const from = i * PLATEAU + PLATEAU - WINDOW;
  const win = seen.filter((s) => s.t >= from && s.t <= (i + 1) * PLATEAU);
  judged = i + 1;
  // About one reading a second; far fewer means k6 itself was starved and saw nothing.
  const need = Math.max(2, Math.floor(WINDOW / 2));
  if (win.length < need) {
    halt(`${r} clicks/s: not judged: ${win.length} lag readings in its last ${WINDOW} s, fewer than ${need} (k6 itself was short of CPU)`);
    return;
  }
  const k = Math.min(5, Math.floor(win.length / 2));
  const a = win[0];
  const b = win[win.length - 1];
  const published = Math.round((b.published - a.published) / (b.t - a.t));
  const maxLag = Math.max(...win.map((s) => s.lag));
  const first = Math.round(mean(win.slice(0, k).map((s) => s.lag)));
  const last = Math.round(mean(win.slice(-k).map((s) => s.lag)));
  if (published < 0.95 * r) {
    halt(`${r} clicks/s: k6 published only ${published}/s: the generator is the limit here, not the pipeline`);
    return;
  }
  if (last - first > r * LAG_GROWTH_S) {
    halt(`${r} clicks/s: pipeline lag grew from ${first} to ${last} over the last ${WINDOW} s ` +
      `(more than ${LAG_GROWTH_S} s of input)`);
    return;
  }
  const text = `${r} clicks/s: published ${published}/s, pipeline lag ${first} -> ${last}, ` +
    `at most ${maxLag} over the last ${WINDOW} s (bound ${r * LAG_BOUND_S})`;
  client.setResult('sustained', r);
  client.setResult('sustainedText', text);
  console.log(`ramp: sustained ${text}`);
}

export function monitor(data) {
  if (client.result('halt') || judged >= LEVELS.length) {
    sleep(1);
    return;
  }
  const t = (Date.now() - data.loadStart) / 1000;
  const lag = client.pipelineLag();
  seen.push({ t: t, lag: lag.total, published: client.stats().published });
  const i = Math.min(Math.floor(t / PLATEAU), LEVELS.length);
  while (judged < i && !client.result('halt')) {
    judge(judged);
  }
  if (i < LEVELS.length && t >= i * PLATEAU + PLATEAU - WINDOW) {
    const bound = LEVELS[i] * LAG_BOUND_S;
    if (lag.missing.length > 0) {
      halt(`${LEVELS[i]} clicks/s: ${lag.text}`);
    } else if (lag.total > bound) {
      halt(`${LEVELS[i]} clicks/s: pipeline lag ${lag.total} > ${bound} (${LAG_BOUND_S} s of input), ` +
        `${(t - i * PLATEAU).toFixed(0)} s into the plateau: ${lag.text}`);
    }
  }
  sleep(1);
}

export function teardown(data) {
  const sustained = client.result('sustained') || 0;
  const stop = client.result('halt');
  sustainedRate.add(sustained);
  if (sustained === 0) {
    console.error(`ramp: no plateau sustained: ${stop || 'no plateau judged'}`);
  } else {
    console.log(`ramp: highest sustained rate: ${sustained} clicks/s (${client.result('sustainedText')}); ` +
      (stop ? `next: ${stop}` : `every plateau up to ${LEVELS[LEVELS.length - 1]} clicks/s was sustained: raise RAMP_MAX`));
  }
  awaitCaughtUp(client, CATCHUP);
  client.close();
}
