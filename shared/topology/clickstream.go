package topology

import "time"

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

const week = 7 * 24 * time.Hour

// windowRetention is how long windowed rows stay in their bucket: ksqlDB's default retention.
const windowRetention = 24 * time.Hour

func clickstream() Catalog {
	return Catalog{
		Streams: []Stream{
			{Name: StreamClickstream, Subjects: []string{SubjectClickstream}, MaxAge: week,
				Description: "clicks (datagen quickstart clickstream); ksqlDB STREAM CLICKSTREAM"},
			{Name: StreamClickstreamCodes, Subjects: []string{SubjectClickstreamCodes}, MaxAge: week,
				Description: "HTTP status codes (datagen clickstream_codes), materialised into KV CLICKSTREAM_CODES"},
			{Name: StreamClickstreamUsers, Subjects: []string{SubjectClickstreamUsers}, MaxAge: week,
				Description: "web users (datagen clickstream_users), materialised into KV WEB_USERS"},
			{Name: StreamPageviews, Subjects: []string{SubjectPageviews}, MaxAge: week,
				Description: "page views (datagen quickstart pageviews)"},
			{Name: StreamImplyNews, Subjects: []string{SubjectImplyNews}, MaxAge: week,
				Description: "imply-news mixed click and session records, routed by recordType"},
			{Name: StreamImplyNewsClicks, Subjects: []string{SubjectImplyNewsClicks}, MaxAge: week,
				Description: "imply-news records with recordType click"},
			{Name: StreamImplyNewsSessions, Subjects: []string{SubjectImplyNewsSession}, MaxAge: week,
				Description: "imply-news records with recordType session"},
			{Name: StreamUserClickstream, Subjects: []string{StreamUserClickstream}, MaxAge: week,
				Description: "clickstream LEFT JOIN WEB_USERS ON userid = user_id"},
			{Name: StreamEnrichedErrorCodes, Subjects: []string{StreamEnrichedErrorCodes}, MaxAge: week,
				Description: "clickstream LEFT JOIN CLICKSTREAM_CODES ON status = code"},
		},
		Buckets: []Bucket{
			{Name: TableWebUsers, Description: "TABLE WEB_USERS, key user_id"},
			{Name: TableClickstreamCodes, Description: "TABLE CLICKSTREAM_CODES, key code"},
			{Name: TableEventsPerMin, Windowed: true, TTL: windowRetention, Description: "count per userid, tumbling 60 s"},
			{Name: TablePagesPerMin, Windowed: true, TTL: windowRetention, Description: "html requests per userid, hopping 60 s / 5 s"},
			{Name: TableErrorsPerMin, Windowed: true, TTL: windowRetention, Description: "status > 400 per status, hopping 60 s / 5 s"},
			{Name: TableErrorsPerMinAlert, Windowed: true, TTL: windowRetention, Description: "status > 400 per status, hopping 60 s / 20 s, HAVING count > 5"},
			{Name: TableClickUserSessions, Windowed: true, TTL: windowRetention, Description: "clicks per username, session window 30 s gap"},
			{Name: TableEnrichedErrorCodesCount, Windowed: true, TTL: windowRetention, Description: "count per code and definition, tumbling 30 s, HAVING count > 1"},
			{Name: TableUserIPActivity, Windowed: true, TTL: windowRetention, Description: "count per username, ip, city, tumbling 60 s, HAVING count > 1"},
		},
	}
}
