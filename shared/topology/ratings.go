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

func ratings() Catalog {
	return Catalog{
		Streams: []Stream{
			{Name: StreamRatings, Subjects: []string{SubjectRatings}, MaxAge: week,
				Description: "ratings (datagen quickstart ratings, or the web app through the Kafka bridge)"},
			{Name: StreamDebezium, Subjects: []string{"asgard", "asgard.>"}, MaxAge: week,
				Description: "Debezium change events, topic prefix asgard (asgard.demo.CUSTOMERS)"},
			{Name: StreamRatingsLive, Subjects: []string{StreamRatingsLive}, MaxAge: week,
				Description: "ratings WHERE LCASE(channel) NOT LIKE '%test%'"},
			{Name: StreamRatingsTest, Subjects: []string{StreamRatingsTest}, MaxAge: week,
				Description: "ratings WHERE LCASE(channel) LIKE '%test%'"},
			{Name: StreamRatingsWithCustomerData, Subjects: []string{StreamRatingsWithCustomerData}, MaxAge: week,
				Description: "ratings LEFT JOIN CUSTOMERS ON user_id = id WHERE first_name IS NOT NULL"},
			{Name: StreamUnhappyPlatinumCustomers, Subjects: []string{StreamUnhappyPlatinumCustomers}, MaxAge: week,
				Description: "RATINGS_WITH_CUSTOMER_DATA WHERE stars < 3 AND club_status = 'platinum'"},
		},
		Buckets: []Bucket{
			{Name: TableCustomers, Description: "TABLE CUSTOMERS from Debezium change events, key id"},
			{Name: TableRatingsPerCustomerPer15Minute, Windowed: true, TTL: windowRetention,
				Description: "count and list of stars per FULL_NAME, tumbling 15 min"},
		},
	}
}
