// Ratings load: datagen ratings into `ratings` at a constant arrival rate, then wait until the
// enricher (join with CUSTOMERS), the alerting filter and the windower have processed all of
// them and check that UNHAPPY_PLATINUM_CUSTOMERS and RATINGS_PER_CUSTOMER_PER_15MINUTE grew.
//
//   NATS_URL (nats://127.0.0.1:4222)  RATE (10 batches/s)  BATCH (20 ratings)  DURATION (30s)
//   CATCHUP_TIMEOUT (60 s)  ACK_P95 (250 ms)  SEED (1)  VUS (10)  MAX_VUS (50)
import { check } from 'k6';
import { Rate, Trend } from 'k6/metrics';
import { Client } from 'k6/x/jetsuite';
import { NATS_URL, envInt, arrivalScenario, waitUntil, lagOf, seed } from './lib.js';

const BATCH = envInt('BATCH', 20);
const CATCHUP_TIMEOUT = envInt('CATCHUP_TIMEOUT', 60);

const CONSUMERS = [
  ['RATINGS', 'enricher-ratings'],
  ['RATINGS_WITH_CUSTOMER_DATA', 'alerting-filter'],
  ['RATINGS_WITH_CUSTOMER_DATA', 'windower-RATINGS_WITH_CUSTOMER_DATA'],
];

const caughtUp = new Rate('jetsuite_caught_up');
const catchup = new Trend('jetsuite_catchup', true);

export const options = {
  scenarios: { ratings: arrivalScenario(envInt('RATE', 10)) },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  setupTimeout: '60s',
  teardownTimeout: `${CATCHUP_TIMEOUT + 30}s`,
  thresholds: {
    'jetsuite_publish_ack{subject:ratings}': [`p(95)<${envInt('ACK_P95', 250)}`],
    jetsuite_events_failed: ['count==0'],
    checks: ['rate==1'],
    jetsuite_caught_up: ['rate==1'],
  },
};

const client = new Client({ url: NATS_URL, seed: envInt('SEED', 1) });

export function setup() {
  seed(client, 30);
  return {
    ratings: client.streamMessages('RATINGS'),
    unhappy: client.streamMessages('UNHAPPY_PLATINUM_CUSTOMERS'),
    perCustomer: client.tableRows('RATINGS_PER_CUSTOMER_PER_15MINUTE'),
  };
}

export default function () {
  const b = client.publishRatings(BATCH);
  check(b, { 'ratings acked': (b) => b.acked === BATCH && b.failed === 0 });
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
  check(took, { 'ratings pipeline caught up': (t) => t >= 0 });
  const ratings = client.streamMessages('RATINGS') - data.ratings;
  const unhappy = client.streamMessages('UNHAPPY_PLATINUM_CUSTOMERS');
  const perCustomer = client.tableRows('RATINGS_PER_CUSTOMER_PER_15MINUTE');
  console.log(`ratings published: ${ratings}, lag 0 after ${took} s; ` +
    `UNHAPPY_PLATINUM_CUSTOMERS ${data.unhappy} -> ${unhappy}; ` +
    `RATINGS_PER_CUSTOMER_PER_15MINUTE ${data.perCustomer} -> ${perCustomer} rows`);
  check(unhappy, { 'UNHAPPY_PLATINUM_CUSTOMERS grew': (n) => n > data.unhappy });
  // Windows are 15 minutes: a short run may only update existing rows, so "has rows" it is.
  check(perCustomer, { 'RATINGS_PER_CUSTOMER_PER_15MINUTE has rows': (n) => n > 0 });
  client.close();
}
