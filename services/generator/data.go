package generator

// Value lists of the datagen quickstarts, copied from kafka-connect-datagen's Avro schemas
// (seed-inventory part B). Duplicates are intentional: avro-random-generator picks uniformly
// from the list, so a duplicate doubles that value's weight.

// clickIPs is clickstream_schema.avro's ip options (40, with duplicates and invalid octets).
var clickIPs = [...]string{
	"111.152.45.45", "111.203.236.146", "111.168.57.122", "111.249.79.93", "111.168.57.122",
	"111.90.225.227", "111.173.165.103", "111.145.8.144", "111.245.174.248", "111.245.174.111",
	"222.152.45.45", "222.203.236.146", "222.168.57.122", "222.249.79.93", "222.168.57.122",
	"222.90.225.227", "222.173.165.103", "222.145.8.144", "222.245.174.248", "222.245.174.222",
	"122.152.45.245", "122.203.236.246", "122.168.57.222", "122.249.79.233", "122.168.57.222",
	"122.90.225.227", "122.173.165.203", "122.145.8.244", "122.245.174.248", "122.245.174.122",
	"233.152.245.45", "233.203.236.146", "233.168.257.122", "233.249.279.93", "233.168.257.122",
	"233.90.225.227", "233.173.215.103", "233.145.28.144", "233.245.174.248", "233.245.174.233",
}

// clickRequests: "GET /site/user_status.html" twice, so P(request LIKE '%html%') = 4/6.
var clickRequests = [...]string{
	"GET /index.html HTTP/1.1",
	"GET /site/user_status.html HTTP/1.1",
	"GET /site/login.html HTTP/1.1",
	"GET /site/user_status.html HTTP/1.1",
	"GET /images/track.png HTTP/1.1",
	"GET /images/logo-small.png HTTP/1.1",
}

// clickStatuses are strings in the schema (ksqlDB coerces them to INT).
var clickStatuses = [...]string{"200", "302", "404", "405", "406", "407"}

// clickBytes are strings in the schema (ksqlDB coerces them to BIGINT).
var clickBytes = [...]string{"278", "1289", "2048", "4096", "4006", "4196", "14096"}

var clickAgents = [...]string{
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/59.0.3071.115 Safari/537.36",
}

// StatusCodes is clickstream_codes_schema.avro's record options, in order.
var StatusCodes = [...]CodeRecord{
	{200, "Successful"},
	{302, "Redirect"},
	{404, "Page not found"},
	{405, "Method not allowed"},
	{406, "Not acceptable"},
	{407, "Proxy authentication required"},
}

var usernames = [...]string{
	"akatz1022", "bobk_43", "alison_99", "k_robertz_88", "Ferd88", "Reeva43", "Antonio_0966",
	"ArlyneW8ter", "DimitriSchenz88", "Oriana_70", "AbdelKable_86", "Roberto_123", "AlanGreta_GG66",
	"Nathan_126", "AndySims_345324", "GlenAlan_23344", "LukeWaters_23", "BenSteins_235",
}

var firstNames = [...]string{
	"Elwyn", "Curran", "Hanson", "Woodrow", "Ferd", "Reeva", "Antonio", "Arlyne", "Dimitri",
	"Oriana", "Abdel", "Greta",
}

var lastNames = [...]string{
	"Vanyard", "Vears", "Garrity", "Trice", "Tomini", "Jushcke", "De Banke", "Pask", "Rockhill",
	"Romagosa", "Adicot", "Lalonde",
}

var cities = [...]string{"Palo Alto", "San Francisco", "Raleigh", "London", "Frankfurt", "New York"}

var levels = [...]string{"Gold", "Silver", "Platinum"}

// registered_at range of clickstream_users (min inclusive, max exclusive).
const (
	registeredMin = 1407645330000
	registeredMax = 1502339792000
)

// WebUserIDs is how many user ids the users quickstart cycles through: clicks carry userid
// -1..39, so ids 1..39 are the ones that can join.
const WebUserIDs = 39

var ratingChannels = [...]string{"web", "iOS", "ios", "iOS-test", "android"}

var ratingMessages = [...]string{
	"worst. flight. ever. #neveragain",
	"Surprisingly good, maybe you are getting your mojo back at long last!",
	"Exceeded all my expectations. Thank you !",
	"meh",
	"(expletive deleted)",
	"is this as good as it gets? really ?",
	"airport refurb looks great, will fly outta here more!",
	"why is it so difficult to keep the bathrooms clean ?",
	"thank you for the most friendly, helpful experience today at your new lounge",
	"more peanuts please",
	"your team here rocks!",
}
