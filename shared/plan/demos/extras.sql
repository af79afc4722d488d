-- jetsuite's own additions to the clickstream demo (statements.sql stays byte for byte the
-- original): the other sources the generator feeds, and the sinks of
-- ksql-tables-to-grafana.sh (every table into the search engine for the dashboards).

CREATE STREAM PAGEVIEWS (
    VIEWTIME BIGINT,
    USERID VARCHAR,
    PAGEID VARCHAR
) WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON');

-- imply-news: one subject of mixed records, told apart by recordType (the imply-news demo's
-- EXTRACTJSONFIELD(payload, '$.recordType')). The routed streams keep the records' fields.
CREATE STREAM IMPLY_NEWS (
    `timestamp` BIGINT, `recordType` VARCHAR, `url` VARCHAR, `useragent` VARCHAR,
    `statuscode` VARCHAR, `state` VARCHAR, `statesVisited` ARRAY<VARCHAR>, `sid` BIGINT,
    `uid` VARCHAR, `isSubscriber` INT, `campaign` VARCHAR, `channel` VARCHAR,
    `contentId` VARCHAR, `subContentId` VARCHAR, `gender` VARCHAR, `age` VARCHAR,
    `latitude` VARCHAR, `longitude` VARCHAR, `place_name` VARCHAR, `country_code` VARCHAR,
    `timezone` VARCHAR
) WITH (KAFKA_TOPIC='imply-news', VALUE_FORMAT='JSON');

CREATE STREAM IMPLY_NEWS_CLICKS WITH (KAFKA_TOPIC='imply-news-clicks') AS
    SELECT * FROM IMPLY_NEWS WHERE `recordType` = 'click';

CREATE STREAM IMPLY_NEWS_SESSIONS WITH (KAFKA_TOPIC='imply-news-sessions') AS
    SELECT `timestamp`, `recordType`, `useragent`, `statesVisited`, `sid`, `uid`
    FROM IMPLY_NEWS WHERE `recordType` = 'session';

CREATE SINK CONNECTOR SINK_ES_CLICKSTREAM WITH (
    'connector.class' = 'io.confluent.connect.elasticsearch.ElasticsearchSinkConnector',
    'topics' = 'USER_CLICKSTREAM,ENRICHED_ERROR_CODES,WEB_USERS,CLICKSTREAM_CODES,EVENTS_PER_MIN,PAGES_PER_MIN,ERRORS_PER_MIN,ERRORS_PER_MIN_ALERT,CLICK_USER_SESSIONS,ENRICHED_ERROR_CODES_COUNT,USER_IP_ACTIVITY',
    'key.ignore' = 'true',
    'schema.ignore' = 'true'
);

CREATE SINK CONNECTOR SINK_ES_RATINGS_TABLES WITH (
    'connector.class' = 'opensearch',
    'topics' = 'RATINGS_LIVE,RATINGS_TEST,CUSTOMERS,RATINGS_PER_CUSTOMER_PER_15MINUTE'
);
