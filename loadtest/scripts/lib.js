// Helpers shared by the jetsuite load scripts.
import { check, sleep } from 'k6';
import { Rate, Trend } from 'k6/metrics';

export const NATS_URL = __ENV.NATS_URL || 'nats://127.0.0.1:4222';

export function envInt(name, def) {
  const v = __ENV[name];
  return v === undefined || v === '' ? def : parseInt(v, 10);
}

// The arrival-rate scenario: RATE iterations per second for DURATION, each one batch.
export function arrivalScenario(rate) {
  return {
    executor: 'constant-arrival-rate',
    rate: rate,
    timeUnit: '1s',
    duration: __ENV.DURATION || '30s',
    // A batch normally takes milliseconds; the VUs are headroom for slow acks.
    preAllocatedVUs: envInt('VUS', 10),
    maxVUs: envInt('MAX_VUS', 50),
  };
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

const warned = {};

// lagOf sums the lag of [stream, durable] pairs; a consumer that does not exist (yet) counts as
// not caught up (logged once per consumer).
export function lagOf(client, consumers) {
  let total = 0;
  for (const [stream, durable] of consumers) {
    try {
      total += client.consumerLag(stream, durable);
    } catch (e) {
      if (!warned[durable]) {
        warned[durable] = true;
        console.warn(`${e}`);
      }
      return Infinity;
    }
  }
  return total;
}

// seed publishes web users, status codes and customers (the generator may be off), then waits
// until the tables the joins read are loaded.
export function seed(client, timeoutS) {
  const n = client.seedReference();
  const took = waitUntil(timeoutS, () =>
    client.tableRows('WEB_USERS') >= 39 &&
    client.tableRows('CLICKSTREAM_CODES') >= 6 &&
    client.tableRows('CUSTOMERS') >= 20);
  check(took, { 'reference tables loaded': (t) => t >= 0 });
  return n;
}

export const CATCHUP_TIMEOUT = envInt('CATCHUP_TIMEOUT', 60);

const caughtUp = new Rate('jetsuite_caught_up');
const catchup = new Trend('jetsuite_catchup', true);

// loadOptions: one arrival-rate scenario and the thresholds every script shares: publish-ack
// latency of a batch (first publish to last ack) on subject, no failed publishes, every check
// passed, and the pipeline drained within CATCHUP_TIMEOUT after the load stopped.
export function loadOptions(scenario, subject, defaultRate) {
  return {
    scenarios: { [scenario]: arrivalScenario(envInt('RATE', defaultRate)) },
    summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
    setupTimeout: '60s',
    teardownTimeout: `${CATCHUP_TIMEOUT + 30}s`,
    thresholds: {
      [`jetsuite_publish_ack{subject:${subject}}`]: [`p(95)<${envInt('ACK_P95', 250)}`],
      jetsuite_events_failed: ['count==0'],
      checks: ['rate==1'],
      jetsuite_caught_up: ['rate==1'],
    },
  };
}

// awaitCaughtUp waits until the consumers' lag is 0 (at most CATCHUP_TIMEOUT), records it, and
// returns the seconds it took (-1: not caught up).
export function awaitCaughtUp(client, consumers, what) {
  const took = waitUntil(CATCHUP_TIMEOUT, () => lagOf(client, consumers) === 0);
  caughtUp.add(took >= 0);
  if (took >= 0) {
    catchup.add(took * 1000);
  }
  check(took, { [`${what} caught up`]: (t) => t >= 0 });
  return took;
}
