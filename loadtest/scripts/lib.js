// Helpers shared by the jetsuite load scripts.
//
// Rates are events per second: RATE=5000 publishes 5,000 clicks (or ratings) a second, in
// batches of BATCH events, so k6 runs RATE/BATCH iterations a second (its "iters/s").
import { check, sleep } from 'k6';
import { Client } from 'k6/x/jetsuite';
import { Gauge, Rate, Trend } from 'k6/metrics';

export const NATS_URL = __ENV.NATS_URL || 'nats://127.0.0.1:4222';

export function envInt(name, def) {
  const v = __ENV[name];
  if (v === undefined || v === '') {
    return def;
  }
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`${name}=${v}: want a whole number`);
  }
  return n;
}

// seconds parses k6's duration strings ("30s", "1m30s", "1500ms", "2h").
export function seconds(d) {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 };
  let total = 0;
  let matched = '';
  for (let m = re.exec(d); m !== null; m = re.exec(d)) {
    total += Number(m[1]) * unit[m[2]];
    matched += m[0];
  }
  if (matched !== d || d === '') {
    throw new Error(`duration ${d}: want e.g. 30s, 2m, 1m30s`);
  }
  return total;
}

export const DURATION = __ENV.DURATION || '30s';
export const CATCHUP_TIMEOUT = envInt('CATCHUP_TIMEOUT', 60);

// newClient: every script talks to the jetsuite at NATS_URL, whose plan is the built-in demos
// unless QUERIES_FILE names jetsuite's --queries-file (FUSE=false: jetsuite's --fuse=false).
export function newClient() {
  return new Client({
    url: NATS_URL,
    seed: envInt('SEED', 1),
    queriesFile: __ENV.QUERIES_FILE || '',
    fuse: __ENV.FUSE !== 'false',
  });
}

// The metrics the scripts add to the extension's (jetsuite_publish_ack, jetsuite_events_*,
// jetsuite_pipeline_lag, jetsuite_e2e_latency).
const caughtUp = new Rate('jetsuite_caught_up');
const catchup = new Trend('jetsuite_catchup', true);
const loadRate = new Gauge('jetsuite_load_events_per_s');

// loadPlan is one run's load: RATE events per second for DURATION, BATCH events per
// iteration. BATCH is only a tuning knob (fewer, larger batches cost the generator less);
// it is capped at RATE so that at least one batch goes out each second.
export function loadPlan(defaultRate, defaultBatch) {
  const rate = envInt('RATE', defaultRate);
  if (rate <= 0) {
    throw new Error('RATE must be at least 1 event per second');
  }
  const batch = Math.max(1, Math.min(envInt('BATCH', defaultBatch), rate));
  return { rate: rate, batch: batch, duration: DURATION, seconds: seconds(DURATION) };
}

// arrivalScenario: `rate` iterations per `batch` seconds is `rate` events per second when each
// iteration publishes `batch` events; k6 spreads the iterations evenly.
export function arrivalScenario(load, exec) {
  return {
    executor: 'constant-arrival-rate',
    exec: exec,
    rate: load.rate,
    timeUnit: `${load.batch}s`,
    duration: load.duration,
    // A batch normally takes milliseconds; the VUs are headroom for slow acks.
    preAllocatedVUs: envInt('VUS', 10),
    maxVUs: envInt('MAX_VUS', 50),
  };
}

// probeScenario: one VU looping `exec` for the load's duration (the lag and marker probes);
// stopped at once at the end, so the load phase ends when the load does.
export function probeScenario(load, exec) {
  return { executor: 'constant-vus', exec: exec, vus: 1, duration: load.duration, gracefulStop: '0s' };
}

// loadOptions: the load and the lag probe, and the thresholds every script shares. None of
// them passes over zero samples: setup records its checks, and handleSummary shows any
// threshold whose metric got none as failed.
export function loadOptions(load, scenario, subject) {
  return {
    scenarios: {
      [scenario]: arrivalScenario(load, 'publish'),
      lag: probeScenario(load, 'watchLag'),
    },
    summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count'],
    setupTimeout: '90s',
    teardownTimeout: `${CATCHUP_TIMEOUT + 30}s`,
    thresholds: {
      // A batch, from its first publish to its last ack.
      [`jetsuite_publish_ack{subject:${subject}}`]: [`p(95)<${envInt('ACK_P95', 250)}`],
      jetsuite_events_published: ['count>0'],
      jetsuite_events_failed: ['count==0'],
      // The generator kept the rate asked: every iteration ran, and the events acked during
      // the load phase came to at least 95 % of RATE.
      dropped_iterations: [`count<=${envInt('DROPPED_MAX', 0)}`],
      jetsuite_load_events_per_s: [`value>=${load.rate * 0.95}`],
      checks: ['rate==1'],
      jetsuite_caught_up: ['rate==1'],
    },
  };
}

// lagProbe is the lag scenario's iteration: the pipeline's total lag once a second during
// the load, so the summary's jetsuite_pipeline_lag max is the peak the load caused.
export function lagProbe(client) {
  client.pipelineLag();
  sleep(1);
}

// waitUntil polls fn (true when done) every 250 ms for at most timeoutS seconds; returns the
// seconds it took, or -1 on timeout.
export function waitUntil(timeoutS, fn) {
  const start = Date.now();
  for (;;) {
    if (fn()) {
      return (Date.now() - start) / 1000;
    }
    if (Date.now() - start > timeoutS * 1000) {
      return -1;
    }
    sleep(0.25);
  }
}

// failSetup records the failure where thresholds see it (a failed check, not caught up), so
// that nothing passes over zero samples, logs it now (k6 logs the exception only after the
// summary) and throws: k6 exits 107.
function failSetup(reason) {
  console.error(`setup failed, no load will run: ${reason}`);
  check(null, { 'setup: jetsuite reachable and its pipeline running': () => false });
  caughtUp.add(false);
  throw new Error(reason);
}

// setupRun checks that a jetsuite with the plan serves NATS_URL (every stream, a consumer on
// every stream the steps read), seeds the reference tables, runs `probe` (a check of the
// whole pipeline; returns an error text or ''), logs `what` (the load) and returns the data
// teardown needs. Any failure ends the run here, loudly, before any load.
export function setupRun(client, what, probe) {
  let p;
  try {
    p = client.checkPipeline();
  } catch (e) {
    failSetup(`${e}`.replace(/^GoError: /, ''));
  }
  check(p, { 'setup: jetsuite reachable and its pipeline running': () => true });
  if (!p.lag.caughtUp) {
    console.warn(`the pipeline has a backlog before the load (${p.lag.text}); the catch-up wait includes it`);
  }
  const n = client.seedReference();
  const took = waitUntil(30, () =>
    client.tableRows('WEB_USERS') >= 39 &&
    client.tableRows('CLICKSTREAM_CODES') >= 6 &&
    client.tableRows('CUSTOMERS') >= 20);
  if (took < 0) {
    failSetup(`reference tables not loaded within 30 s after seeding ${n} messages (WEB_USERS, CLICKSTREAM_CODES, CUSTOMERS)`);
  }
  check(took, { 'setup: reference tables loaded': () => true });
  if (probe) {
    const err = probe();
    if (err) {
      failSetup(err);
    }
  }
  console.log(`${what}; the plan: ${p.streams} streams, ${p.consumers} consumers`);
  return {};
}

// describeLoad is setup's log line of a constant load.
export function describeLoad(what, load) {
  return `${what}: ${load.rate} events/s (RATE) for ${load.duration}, in batches of ${load.batch} (BATCH): ` +
    `${(load.rate / load.batch).toFixed(2)} iterations/s`;
}

// loadStarts marks the start of the load phase in setup's data: the scenarios start as soon
// as setup returns.
export function loadStarts(client, data) {
  data.published = client.stats().published;
  data.loadStart = Date.now();
  return data;
}

// finishLoad reports the load phase's publish rate: events acked during it, divided by its
// length (DURATION, or up to the last ack if that came later). k6's own rate of
// jetsuite_events_published divides by the whole run, setup and catch-up wait included.
export function finishLoad(client, data, what, load) {
  const st = client.stats();
  const events = st.published - data.published;
  const ms = Math.max(load.seconds * 1000, st.lastAckMs - data.loadStart);
  const rate = Math.round(events / (ms / 1000));
  loadRate.add(rate);
  console.log(`${what}: ${events} events acked in ${(ms / 1000).toFixed(1)} s of load: ` +
    `${rate} events/s (RATE asked ${load.rate})`);
  return events;
}

// awaitCaughtUp waits until the pipeline's total lag is 0 and every stream the plan reads has
// a consumer, for at most timeoutS (default CATCHUP_TIMEOUT); records it and logs the outcome.
export function awaitCaughtUp(client, timeoutS = CATCHUP_TIMEOUT) {
  let lag;
  const took = waitUntil(timeoutS, () => {
    lag = client.pipelineLag();
    return lag.caughtUp;
  });
  caughtUp.add(took >= 0);
  check(took, { [`pipeline caught up within ${timeoutS} s`]: (t) => t >= 0 });
  if (took >= 0) {
    catchup.add(took * 1000);
    console.log(`caught up: pipeline lag 0 on every consumer ${took.toFixed(2)} s after the load`);
  } else {
    console.error(`NOT caught up within ${timeoutS} s (CATCHUP_TIMEOUT): pipeline lag ${lag.total}: ${lag.text}`);
  }
  return took;
}

// handleSummary prints k6's own summary, unless the run measured nothing: setup failed, or
// a metric with a threshold got no sample. k6 passes a threshold over no samples ('rate==1'
// shows ✓ at 0.00 %); this summary fails it instead.
export function handleSummary(data) {
  const setupFailed = data.setup_data === undefined;
  const empty = {};
  let any = false;
  for (const [name, m] of Object.entries(data.metrics)) {
    if (!m.thresholds) {
      continue;
    }
    const v = m.values;
    if ((m.type === 'rate' && v.passes + v.fails === 0) || (m.type === 'trend' && v.count === 0)) {
      empty[name] = true;
      any = true;
    }
  }
  if (!setupFailed && !any) {
    return undefined;
  }
  const lines = ['', '  █ RUN FAILED: ' + (setupFailed
    ? 'setup did not finish (the error is logged above); no load ran, nothing was measured'
    : 'metrics with thresholds got no samples; the run measured nothing for them'), '',
  '  █ THRESHOLDS (a threshold over no samples, or on a run whose setup failed, fails)', ''];
  for (const name of Object.keys(data.metrics).sort()) {
    const m = data.metrics[name];
    if (!m.thresholds) {
      continue;
    }
    lines.push(`    ${name}`);
    for (const [t, r] of Object.entries(m.thresholds)) {
      let state;
      if (empty[name]) {
        state = 'no samples';
      } else {
        state = Object.keys(m.values).sort()
          .map((k) => `${k}=${Number.isInteger(m.values[k]) ? m.values[k] : m.values[k].toFixed(2)}`).join(' ');
      }
      const ok = r.ok && !empty[name] && !setupFailed;
      lines.push(`    ${ok ? '✓' : '✗'} '${t}' ${state}`);
    }
    lines.push('');
  }
  return { stdout: lines.join('\n') + '\n' };
}
