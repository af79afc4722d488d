// Package testenv tells integration tests where the real dependencies started by
// testenv/run.sh (Kafka, Kafka Connect with Debezium, MariaDB, OpenSearch) are.
//
// Outside CI a missing dependency skips the test with a message saying how to start it. In CI
// (CI=true) it fails the test: a dependency that did not start must never pass silently.
package testenv

import (
	"net"
	"os"
	"testing"
)

// Variables exported by testenv/run.sh.
const (
	KafkaBrokers  = "JETSUITE_TEST_KAFKA_BROKERS"  // host:port of the real Kafka broker
	KafkaConnect  = "JETSUITE_TEST_KAFKA_CONNECT"  // http://host:port of Kafka Connect (Debezium MariaDB connector)
	MariaDB       = "JETSUITE_TEST_MARIADB_DSN"    // Go DSN of the MariaDB with demo.CUSTOMERS, e.g. root@tcp(127.0.0.1:3307)/demo
	MariaDBSocket = "JETSUITE_TEST_MARIADB_SOCKET" // unix socket of that MariaDB, for the mariadb client
	OpenSearchURL = "JETSUITE_TEST_OPENSEARCH_URL" // http://host:port of the real OpenSearch node
	// OpenSearchCtl is a command that takes "stop" or "start" to take the node away and bring it back.
	OpenSearchCtl = "JETSUITE_TEST_OPENSEARCH_CTL"
	// DebeziumServer is the folder of Debezium Server's distribution (run.sh, config/, lib/);
	// DebeziumServerJavaHome a JDK it runs on (>= 21). Fetched, not started, by testenv/run.sh.
	DebeziumServer         = "JETSUITE_TEST_DEBEZIUM_SERVER"
	DebeziumServerJavaHome = "JETSUITE_TEST_DEBEZIUM_SERVER_JAVA_HOME"
	// Logs is a folder where a test may leave a log for after the run (testenv/run.sh's logs).
	Logs = "JETSUITE_TEST_LOGS"
)

// Require returns the value of the environment variable name, skipping the test when it is
// unset outside CI and failing it when it is unset in CI.
func Require(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if InCI() {
		t.Fatalf("%s is not set: the real dependency did not start (CI runs the tests through testenv/run.sh)", name)
	}
	t.Skipf("%s is not set: run through `go tool task test` (testenv/run.sh starts the real dependency)", name)
	return ""
}

// InCI reports whether the tests run in CI.
func InCI() bool { return os.Getenv("CI") == "true" }

// FreeAddr returns 127.0.0.1:<a port nobody listens on right now>, for a server a test starts
// (and may restart on the same address).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
