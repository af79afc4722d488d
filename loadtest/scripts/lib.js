// Helpers shared by the jetsuite load scripts.
import { check, sleep } from 'k6';

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
