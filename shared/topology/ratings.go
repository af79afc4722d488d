package topology

// Source subjects of the ratings pipeline.
const (
	SubjectRatings = "ratings"
	// SubjectCustomersCDC is where Debezium (Server's NATS sink, or Kafka through the bridge)
	// publishes change events of demo.CUSTOMERS: <topic.prefix>.<database>.<table>.
	SubjectCustomersCDC = "asgard.demo.CUSTOMERS"
)

// Streams of the ratings pipeline.
const (
	StreamRatings = "RATINGS"
	// StreamDebezium is named like Debezium Server's default stream (hard-coded "DebeziumStream"
	// before 3.5), so that a Debezium Server with create-stream=false publishes into it unchanged.
	// It binds only the asgard prefix: Debezium's default "*.*.*" would overlap the KV buckets.
	StreamDebezium                 = "DebeziumStream"
	StreamRatingsLive              = "RATINGS_LIVE"
	StreamRatingsTest              = "RATINGS_TEST"
	StreamRatingsWithCustomerData  = "RATINGS_WITH_CUSTOMER_DATA"
	StreamUnhappyPlatinumCustomers = "UNHAPPY_PLATINUM_CUSTOMERS"
)

// Tables of the ratings pipeline.
const (
	TableCustomers                     = "CUSTOMERS"
	TableRatingsPerCustomerPer15Minute = "RATINGS_PER_CUSTOMER_PER_15MINUTE"
)
