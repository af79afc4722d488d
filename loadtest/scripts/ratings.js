// Ratings load: datagen ratings into `ratings` at a constant arrival rate (events per
// second) and the pipeline's lag once a second; then wait until every consumer of the plan
// (the windower's join with CUSTOMERS, filters and aggregation, the alerting sink) has
// processed everything and check that UNHAPPY_PLATINUM_CUSTOMERS and
// RATINGS_PER_CUSTOMER_PER_15MINUTE grew.
//
//   NATS_URL (nats://127.0.0.1:4222)  RATE (200 ratings/s)  BATCH (20 ratings per iteration)
//   DURATION (30s)  CATCHUP_TIMEOUT (60 s)  ACK_P95 (250 ms)  DROPPED_MAX (0)  SEED (1)
//   VUS (10)  MAX_VUS (50)  QUERIES_FILE, FUSE (jetsuite's --queries-file, --fuse)
import { check } from 'k6';
import {
  newClient, loadPlan, describeLoad, loadOptions, setupRun, loadStarts, finishLoad, awaitCaughtUp, lagProbe,
} from './lib.js';

export { handleSummary } from './lib.js';

const LOAD = loadPlan(200, 20);

export const options = loadOptions(LOAD, 'ratings', 'ratings');

const client = newClient();

export function setup() {
  const data = setupRun(client, describeLoad('ratings', LOAD), null);
  data.unhappy = client.streamMessages('UNHAPPY_PLATINUM_CUSTOMERS');
  data.perCustomer = client.tableRows('RATINGS_PER_CUSTOMER_PER_15MINUTE');
  return loadStarts(client, data);
}

export function publish() {
  const b = client.publishRatings(LOAD.batch);
  check(b, { 'ratings acked': (b) => b.acked === LOAD.batch && b.failed === 0 });
  if (b.failed > 0) {
    console.error(`publish: ${b.failed} of ${LOAD.batch} failed: ${b.error}`);
  }
}

export function watchLag() {
  lagProbe(client);
}

export function teardown(data) {
  finishLoad(client, data, 'ratings', LOAD);
  awaitCaughtUp(client);
  const unhappy = client.streamMessages('UNHAPPY_PLATINUM_CUSTOMERS');
  const perCustomer = client.tableRows('RATINGS_PER_CUSTOMER_PER_15MINUTE');
  console.log(`UNHAPPY_PLATINUM_CUSTOMERS ${data.unhappy} -> ${unhappy} messages; ` +
    `RATINGS_PER_CUSTOMER_PER_15MINUTE ${data.perCustomer} -> ${perCustomer} rows`);
  check(unhappy, { 'UNHAPPY_PLATINUM_CUSTOMERS grew': (n) => n > data.unhappy });
  // Windows are 15 minutes: a short run may only update existing rows, so "has rows" it is.
  check(perCustomer, { 'RATINGS_PER_CUSTOMER_PER_15MINUTE has rows': (n) => n > 0 });
  client.close();
}
