// Clickstream load: datagen clicks into `clickstream` at a constant arrival rate, then wait
// until the enricher and the windower have processed all of them and check the seven windowed
// tables got rows.
//
//   NATS_URL (nats://127.0.0.1:4222)  RATE (20 batches/s)  BATCH (50 clicks)  DURATION (30s)
//   CATCHUP_TIMEOUT (60 s)  ACK_P95 (250 ms)  SEED (1)  VUS (10)  MAX_VUS (50)
import { check } from 'k6';
import { Client } from 'k6/x/jetsuite';
import { NATS_URL, envInt, loadOptions, awaitCaughtUp, seed } from './lib.js';

const BATCH = envInt('BATCH', 50);

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

export const options = loadOptions('clicks', 'clickstream', 20);

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
  const took = awaitCaughtUp(client, CONSUMERS, 'windower');
  const clicks = client.streamMessages('CLICKSTREAM') - data.clicks;
  console.log(`clicks published: ${clicks}, lag 0 after ${took} s`);
  for (const t of TABLES) {
    const rows = client.tableRows(t);
    console.log(`${t}: ${data.rows[t]} -> ${rows} rows`);
    check(rows, { [`${t} has new rows`]: (r) => r > data.rows[t] });
  }
  client.close();
}
