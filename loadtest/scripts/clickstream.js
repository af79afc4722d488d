// Clickstream load: datagen clicks into `clickstream` at a constant arrival rate, then wait
// until the enricher and the windower have processed all of them and check the seven windowed
// tables got rows.
//
//   NATS_URL (nats://127.0.0.1:4222)  RATE (20 batches/s)  BATCH (50 clicks)  DURATION (30s)
//   CATCHUP_TIMEOUT (60 s)  ACK_P95 (250 ms)  SEED (1)  VUS (10)  MAX_VUS (50)
import { check } from 'k6';
import { Rate, Trend } from 'k6/metrics';
import { Client } from 'k6/x/jetsuite';
import { NATS_URL, envInt, arrivalScenario, waitUntil, lagOf, seed } from './lib.js';

const BATCH = envInt('BATCH', 50);
const CATCHUP_TIMEOUT = envInt('CATCHUP_TIMEOUT', 60);

// Everything between `clickstream` and the tables: the enricher's join, then the windower's
// three inputs.
const CONSUMERS = [
  ['CLICKSTREAM', 'enricher-clickstream'],
  ['CLICKSTREAM', 'windower-CLICKSTREAM'],
  ['USER_CLICKSTREAM', 'windower-USER_CLICKSTREAM'],
  ['ENRICHED_ERROR_CODES', 'windower-ENRICHED_ERROR_CODES'],
];

const TABLES = [
  'EVENTS_PER_MIN', 'PAGES_PER_MIN', 'ERRORS_PER_MIN', 'ERRORS_PER_MIN_ALERT',
  'CLICK_USER_SESSIONS', 'ENRICHED_ERROR_CODES_COUNT', 'USER_IP_ACTIVITY',
];

const caughtUp = new Rate('jetsuite_caught_up');
const catchup = new Trend('jetsuite_catchup', true);

export const options = {
  scenarios: { clicks: arrivalScenario(envInt('RATE', 20)) },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  setupTimeout: '60s',
  teardownTimeout: `${CATCHUP_TIMEOUT + 30}s`,
  thresholds: {
    // One batch, first publish to last ack.
    'jetsuite_publish_ack{subject:clickstream}': [`p(95)<${envInt('ACK_P95', 250)}`],
    jetsuite_events_failed: ['count==0'],
    checks: ['rate==1'],
    // The pipeline drained every click within CATCHUP_TIMEOUT after the load stopped.
    jetsuite_caught_up: ['rate==1'],
  },
};

const client = new Client({ url: NATS_URL, seed: envInt('SEED', 1) });

export function setup() {
  seed(client, 30);
  const rows = {};
  for (const t of TABLES) {
    rows[t] = client.tableRows(t);
  }
  return { rows: rows, clicks: client.streamMessages('CLICKSTREAM') };
}

export default function () {
  const b = client.publishClicks(BATCH);
  check(b, { 'clicks acked': (b) => b.acked === BATCH && b.failed === 0 });
  if (b.failed > 0) {
    console.error(`publish: ${b.failed} of ${BATCH} failed: ${b.error}`);
  }
}

export function teardown(data) {
  const took = waitUntil(CATCHUP_TIMEOUT, () => lagOf(client, CONSUMERS) === 0);
  caughtUp.add(took >= 0);
  if (took >= 0) {
    catchup.add(took * 1000);
  }
  check(took, { 'windower caught up': (t) => t >= 0 });
  const clicks = client.streamMessages('CLICKSTREAM') - data.clicks;
  console.log(`clicks published: ${clicks}, lag 0 after ${took} s`);
  for (const t of TABLES) {
    const rows = client.tableRows(t);
    console.log(`${t}: ${data.rows[t]} -> ${rows} rows`);
    check(rows, { [`${t} has new rows`]: (r) => r > data.rows[t] });
  }
  client.close();
}
