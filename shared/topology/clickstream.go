package topology

// Source subjects of the clickstream pipeline: the original Kafka topic names.
const (
	SubjectClickstream      = "clickstream"
	SubjectClickstreamCodes = "clickstream_codes"
	SubjectClickstreamUsers = "clickstream_users"
	SubjectPageviews        = "pageviews"
	SubjectImplyNews        = "imply-news"
	SubjectImplyNewsClicks  = "imply-news-clicks"
	SubjectImplyNewsSession = "imply-news-sessions"
)

// Streams of the clickstream pipeline. Derived streams use their ksqlDB name as stream name
// and as subject.
const (
	StreamClickstream        = "CLICKSTREAM"
	StreamClickstreamCodes   = "CLICKSTREAM_CODES_SRC"
	StreamClickstreamUsers   = "CLICKSTREAM_USERS"
	StreamPageviews          = "PAGEVIEWS"
	StreamImplyNews          = "IMPLY_NEWS"
	StreamImplyNewsClicks    = "IMPLY_NEWS_CLICKS"
	StreamImplyNewsSessions  = "IMPLY_NEWS_SESSIONS"
	StreamUserClickstream    = "USER_CLICKSTREAM"
	StreamEnrichedErrorCodes = "ENRICHED_ERROR_CODES"
)

// Tables (KV buckets) of the clickstream pipeline.
const (
	TableWebUsers                = "WEB_USERS"
	TableClickstreamCodes        = "CLICKSTREAM_CODES"
	TableEventsPerMin            = "EVENTS_PER_MIN"
	TablePagesPerMin             = "PAGES_PER_MIN"
	TableErrorsPerMin            = "ERRORS_PER_MIN"
	TableErrorsPerMinAlert       = "ERRORS_PER_MIN_ALERT"
	TableClickUserSessions       = "CLICK_USER_SESSIONS"
	TableEnrichedErrorCodesCount = "ENRICHED_ERROR_CODES_COUNT"
	TableUserIPActivity          = "USER_IP_ACTIVITY"
)
