// Ratings load: datagen ratings into `ratings` at a constant arrival rate, then wait until the
// enricher (join with CUSTOMERS), the alerting filter and the windower have processed all of
// them and check that UNHAPPY_PLATINUM_CUSTOMERS and RATINGS_PER_CUSTOMER_PER_15MINUTE grew.
//
//   NATS_URL (nats://127.0.0.1:4222)  RATE (10 batches/s)  BATCH (20 ratings)  DURATION (30s)
//   CATCHUP_TIMEOUT (60 s)  ACK_P95 (250 ms)  SEED (1)  VUS (10)  MAX_VUS (50)
import { check } from 'k6';
import { Client } from 'k6/x/jetsuite';
import { NATS_URL, envInt, loadOptions, awaitCaughtUp, seed } from './lib.js';

const BATCH = envInt('BATCH', 20);

const CONSUMERS = [
  ['RATINGS', 'enricher-ratings'],
  ['RATINGS_WITH_CUSTOMER_DATA', 'alerting-filter'],
  ['RATINGS_WITH_CUSTOMER_DATA', 'windower-RATINGS_WITH_CUSTOMER_DATA'],
];

export const options = loadOptions('ratings', 'ratings', 10);

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
  const took = awaitCaughtUp(client, CONSUMERS, 'ratings pipeline');
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
