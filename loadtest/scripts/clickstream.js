// Clickstream load: datagen clicks into `clickstream` at a constant arrival rate (events per
// second), a marker click a second to time publish -> table row, and the pipeline's lag
// once a second; then wait until every consumer of the plan has processed everything and
// check the seven windowed tables got rows.
//
//   NATS_URL (nats://127.0.0.1:4222)  RATE (1000 clicks/s)  BATCH (50 clicks per iteration)
//   DURATION (30s)  CATCHUP_TIMEOUT (60 s)  ACK_P95 (250 ms)  E2E_P95 (5000 ms)
//   MARKER_TIMEOUT (10 s)  DROPPED_MAX (0)  SEED (1)  VUS (10)  MAX_VUS (50)
//   QUERIES_FILE, FUSE (jetsuite's --queries-file, --fuse)
import { check, sleep } from 'k6';
import {
  envInt, newClient, loadPlan, describeLoad, loadOptions, probeScenario, setupRun, loadStarts, finishLoad,
  awaitCaughtUp, lagProbe,
} from './lib.js';

export { handleSummary } from './lib.js';

const LOAD = loadPlan(1000, 50);
const MARKER_TIMEOUT = envInt('MARKER_TIMEOUT', 10);

const TABLES = [
  'EVENTS_PER_MIN', 'PAGES_PER_MIN', 'ERRORS_PER_MIN', 'ERRORS_PER_MIN_ALERT',
  'CLICK_USER_SESSIONS', 'ENRICHED_ERROR_CODES_COUNT', 'USER_IP_ACTIVITY',
];

export const options = loadOptions(LOAD, 'clicks', 'clickstream');
options.scenarios.e2e = probeScenario(LOAD, 'marker');
// Publish to table row, of the marker clicks (one a second during the load, one in setup).
options.thresholds.jetsuite_e2e_latency = [`p(95)<${envInt('E2E_P95', 5000)}`];

const client = newClient();

export function setup() {
  const data = setupRun(client, describeLoad('clicks', LOAD), () => {
    // The whole pipeline answers before the load starts: a marker click becomes a row.
    const m = client.markClick(30);
    return m.ok ? '' : `a probe click did not become an EVENTS_PER_MIN row: ${m.error}`;
  });
  data.rows = {};
  for (const t of TABLES) {
    data.rows[t] = client.tableRows(t);
  }
  return loadStarts(client, data);
}

export function publish() {
  const b = client.publishClicks(LOAD.batch);
  check(b, { 'clicks acked': (b) => b.acked === LOAD.batch && b.failed === 0 });
  if (b.failed > 0) {
    console.error(`publish: ${b.failed} of ${LOAD.batch} failed: ${b.error}`);
  }
}

export function watchLag() {
  lagProbe(client);
}

export function marker() {
  const m = client.markClick(MARKER_TIMEOUT);
  if (!m.interrupted) {
    check(m, { 'marker click became a table row': (m) => m.ok });
    if (!m.ok) {
      console.error(`marker: ${m.error}`);
    }
  }
  sleep(1);
}

export function teardown(data) {
  finishLoad(client, data, 'clicks', LOAD);
  awaitCaughtUp(client);
  for (const t of TABLES) {
    const rows = client.tableRows(t);
    console.log(`${t}: ${data.rows[t]} -> ${rows} rows`);
    check(rows, { [`${t} has new rows`]: (r) => r > data.rows[t] });
  }
  client.close();
}
