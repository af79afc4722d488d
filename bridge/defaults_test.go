package bridge

import (
	"slices"
	"testing"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
)

// The bridge's routes come from the pipeline: the built-in demos' as the originals had them,
// and a user pipeline's own when the settings were left at their defaults.
func TestDefaultsFollowThePipeline(t *testing.T) {
	demo := plan.Demo()
	if got, want := FromKafkaOf(demo), []string{"clickstream", "clickstream_codes", "clickstream_users", "ratings", "asgard.demo.CUSTOMERS", "pageviews", "imply-news"}; !slices.Equal(got, want) {
		t.Errorf("from Kafka %v, want %v", got, want)
	}
	if got, want := ToKafkaOf(demo), []string{"UNHAPPY_PLATINUM_CUSTOMERS", "RATINGS_WITH_CUSTOMER_DATA=ratings-enriched"}; !slices.Equal(got, want) {
		t.Errorf("to Kafka %v, want %v", got, want)
	}
	if got, want := KeyFieldsOf(demo), []string{"UNHAPPY_PLATINUM_CUSTOMERS=FULL_NAME"}; !slices.Equal(got, want) {
		t.Errorf("key fields %v, want %v", got, want)
	}

	mine, err := plan.Compile(plan.File{Name: "orders.sql", SQL: `
CREATE STREAM ORDERS (ID BIGINT, CUSTOMER VARCHAR, TOTAL DOUBLE) WITH (KAFKA_TOPIC='orders');
CREATE STREAM BIG_ORDERS WITH (KAFKA_TOPIC='big-orders') AS SELECT ID, CUSTOMER, TOTAL FROM ORDERS WHERE TOTAL > 1000 PARTITION BY CUSTOMER;
CREATE SINK CONNECTOR OUT WITH ('connector.class'='kafka', 'topics'='big-orders');`})
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Brokers = []string{"127.0.0.1:1"}
	s, err := New(c, runner.Deps{JS: natstest.Start(t).JS, Plan: mine})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.to) != 1 || s.to[0].from != "BIG_ORDERS" || s.to[0].to != "big-orders" || s.keys["BIG_ORDERS"] != "CUSTOMER" ||
		len(s.from) != 1 || s.from[0].from != "orders" {
		t.Errorf("a bridge of orders.sql routes %+v to Kafka and %+v from it, keys %v", s.to, s.from, s.keys)
	}
	if got, want := FromKafkaOf(mine), []string{"orders"}; !slices.Equal(got, want) {
		t.Errorf("from Kafka %v, want %v", got, want)
	}
	if got, want := ToKafkaOf(mine), []string{"BIG_ORDERS=big-orders"}; !slices.Equal(got, want) {
		t.Errorf("to Kafka %v, want %v", got, want)
	}
	if got, want := KeyFieldsOf(mine), []string{"BIG_ORDERS=CUSTOMER"}; !slices.Equal(got, want) {
		t.Errorf("key fields %v, want %v", got, want)
	}
}
