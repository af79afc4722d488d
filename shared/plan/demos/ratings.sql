-- The ratings pipeline: the statements of build-a-streaming-pipeline/ksqldb-statements.sql
-- (confluentinc/demo-scene), in the same order and unchanged except:
--   * VALUE_FORMAT='JSON' in place of AVRO, so the columns are written out (JSON carries no
--     schema registry): RATINGS (the original read it from datagen's Avro schema) and
--     CUSTOMERS / CUSTOMERS_STREAM (the original got them from Debezium's Avro schema);
--   * CUSTOMERS and CUSTOMERS_STREAM read Debezium's change events as they are
--     (VALUE_FORMAT='DEBEZIUM_JSON', like Flink SQL's debezium-json), where the original
--     flattened them with the ExtractNewRecordState and ExtractField$Key transforms;
--   * UNHAPPY_PLATINUM_CUSTOMERS also selects RATING_ID: each Slack alert names its rating and
--     is sent once per rating id;
--   * two sinks of jetsuite's own at the end: Slack alerts and the copy back to Kafka.

CREATE STREAM RATINGS (
    RATING_ID BIGINT,
    USER_ID INT,
    STARS INT,
    ROUTE_ID INT,
    RATING_TIME BIGINT,
    CHANNEL VARCHAR,
    MESSAGE VARCHAR
) WITH (KAFKA_TOPIC='ratings', VALUE_FORMAT='JSON');

CREATE SINK CONNECTOR SINK_ES_RATINGS WITH (
    'connector.class' = 'io.confluent.connect.elasticsearch.ElasticsearchSinkConnector',
    'topics'          = 'ratings',
    'connection.url'  = 'http://elasticsearch:9200',
    'type.name'       = '_doc',
    'key.ignore'      = 'false',
    'schema.ignore'   = 'true',
    'transforms'= 'ExtractTimestamp',
    'transforms.ExtractTimestamp.type'= 'org.apache.kafka.connect.transforms.InsertField$Value',
    'transforms.ExtractTimestamp.timestamp.field' = 'RATING_TS'
);

CREATE STREAM RATINGS_LIVE AS
SELECT USER_ID, STARS, CHANNEL, MESSAGE FROM RATINGS WHERE LCASE(CHANNEL) NOT LIKE '%test%' EMIT CHANGES;

CREATE STREAM RATINGS_TEST AS
SELECT USER_ID, STARS, CHANNEL, MESSAGE FROM RATINGS WHERE LCASE(CHANNEL) LIKE '%test%' EMIT CHANGES;

CREATE SOURCE CONNECTOR SOURCE_MYSQL_01 WITH (
    'connector.class' = 'io.debezium.connector.mysql.MySqlConnector',
    'database.hostname' = 'mysql',
    'database.port' = '3306',
    'database.user' = 'debezium',
    'database.password' = 'dbz',
    'database.server.id' = '42',
    'database.server.name' = 'asgard',
    'table.whitelist' = 'demo.customers',
    'include.schema.changes' = 'false'
    );

CREATE TABLE CUSTOMERS (
    CUSTOMER_ID VARCHAR PRIMARY KEY,
    ID INT,
    FIRST_NAME VARCHAR,
    LAST_NAME VARCHAR,
    EMAIL VARCHAR,
    GENDER VARCHAR,
    CLUB_STATUS VARCHAR,
    COMMENTS VARCHAR,
    CREATE_TS VARCHAR,
    UPDATE_TS VARCHAR
) WITH (KAFKA_TOPIC='asgard.demo.CUSTOMERS', VALUE_FORMAT='DEBEZIUM_JSON');

CREATE STREAM CUSTOMERS_STREAM (
    CUSTOMER_ID VARCHAR KEY,
    ID INT,
    FIRST_NAME VARCHAR,
    LAST_NAME VARCHAR,
    EMAIL VARCHAR,
    CLUB_STATUS VARCHAR
) WITH (KAFKA_TOPIC='asgard.demo.CUSTOMERS', VALUE_FORMAT='DEBEZIUM_JSON');

SET 'auto.offset.reset' = 'earliest';
-- The original names the output topic: WITH (KAFKA_TOPIC='ratings-enriched'). jetsuite keeps a
-- derived stream's subject equal to its name; the Kafka sink KAFKA_RATINGS below writes it to
-- the Kafka topic ratings-enriched, as the original had it.
CREATE STREAM RATINGS_WITH_CUSTOMER_DATA
       AS
SELECT R.RATING_ID, R.MESSAGE, R.STARS, R.CHANNEL,
       C.CUSTOMER_ID, C.FIRST_NAME + ' ' + C.LAST_NAME AS FULL_NAME,
       C.CLUB_STATUS, C.EMAIL
FROM   RATINGS R
       LEFT JOIN CUSTOMERS C
         ON CAST(R.USER_ID AS STRING) = C.CUSTOMER_ID
WHERE  C.FIRST_NAME IS NOT NULL
EMIT CHANGES;

CREATE STREAM UNHAPPY_PLATINUM_CUSTOMERS AS
SELECT FULL_NAME, CLUB_STATUS, EMAIL, STARS, MESSAGE, RATING_ID
FROM   RATINGS_WITH_CUSTOMER_DATA
WHERE  STARS < 3
  AND  CLUB_STATUS = 'platinum'
PARTITION BY FULL_NAME;

CREATE SINK CONNECTOR SINK_ELASTIC_01 WITH (
  'connector.class' = 'io.confluent.connect.elasticsearch.ElasticsearchSinkConnector',
  'connection.url' = 'http://elasticsearch:9200',
  'type.name' = '',
  'behavior.on.malformed.documents' = 'warn',
  'errors.tolerance' = 'all',
  'errors.log.enable' = 'true',
  'errors.log.include.messages' = 'true',
  'topics' = 'RATINGS_WITH_CUSTOMER_DATA,UNHAPPY_PLATINUM_CUSTOMERS',
  'key.ignore' = 'true',
  'schema.ignore' = 'true',
  'key.converter' = 'org.apache.kafka.connect.storage.StringConverter',
  'transforms'= 'ExtractTimestamp',
  'transforms.ExtractTimestamp.type'= 'org.apache.kafka.connect.transforms.InsertField$Value',
  'transforms.ExtractTimestamp.timestamp.field' = 'EXTRACT_TS'
);

CREATE TABLE RATINGS_PER_CUSTOMER_PER_15MINUTE AS
SELECT FULL_NAME,COUNT(*) AS RATINGS_COUNT, COLLECT_LIST(STARS) AS RATINGS
  FROM RATINGS_WITH_CUSTOMER_DATA
        WINDOW TUMBLING (SIZE 15 MINUTE)
  GROUP BY FULL_NAME
  EMIT CHANGES;

-- jetsuite: one Slack message per unhappy platinum customer (python_kafka_notify.py's job in
-- the original), and both outputs copied to Kafka as the original's ksqlDB wrote them there.
CREATE SINK CONNECTOR SLACK_UNHAPPY_PLATINUM WITH (
  'connector.class' = 'slack',
  'topics' = 'UNHAPPY_PLATINUM_CUSTOMERS',
  -- python_kafka_notify.py's text, word for word; {COLUMN} is the row's value.
  'message' = '`{EMAIL}` just left a bad review :disappointed:
> {MESSAGE}

_Please contact them immediately and see if we can fix the issue *right here, right now*_'
);

CREATE SINK CONNECTOR KAFKA_RATINGS WITH (
  'connector.class' = 'kafka',
  'topics' = 'UNHAPPY_PLATINUM_CUSTOMERS,RATINGS_WITH_CUSTOMER_DATA=ratings-enriched'
);

SELECT TIMESTAMPTOSTRING(WINDOWSTART, 'yyyy-MM-dd HH:mm:ss') AS WINDOW_START_TS,
       FULL_NAME,
       RATINGS_COUNT,
       RATINGS
FROM   RATINGS_PER_CUSTOMER_PER_15MINUTE
WHERE  FULL_NAME='Rica Blaisdell'
  AND  WINDOWSTART > '2020-07-06T15:30:00.000';
