#!/usr/bin/env bash
# testenv/run.sh — start jetsuite's real test dependencies, run a command against them, stop them.
#
#   bash testenv/run.sh CMD [ARGS...]   start everything, export the variables below, run CMD,
#                                       stop everything (also on failure or Ctrl-C), exit with CMD's code
#   bash testenv/run.sh --up            start everything and leave it running; writes .testenv/env.sh
#                                       (`source .testenv/env.sh` to get the variables)
#   bash testenv/run.sh --down          stop what --up started
#
# What it starts (each on a free loopback port, data and logs under .testenv/, nothing system-wide):
#   MariaDB 10.11 (Debian mariadb-server, private instance, ROW binlog) with demo.CUSTOMERS (customers.sql)
#   Apache Kafka 3.9.1, single KRaft node                      (jars from Maven Central, pom-kafka.xml)
#   Kafka Connect 3.9.1 standalone + Debezium 3.6.1 MariaDB connector, topic prefix asgard, table
#     demo.CUSTOMERS -> topic asgard.demo.CUSTOMERS, JSON converter without schemas (pom-connect.xml)
#   OpenSearch, when testenv/opensearch.sh exists (it defines opensearch_up / opensearch_down)
# and fetches (does not start) Debezium Server 3.6.1 for the compose rehearsal (compose/rehearsal_test.go).
#
# Exported to CMD (names from shared/testenv):
#   JETSUITE_TEST_KAFKA_BROKERS   127.0.0.1:<port>
#   JETSUITE_TEST_KAFKA_CONNECT   http://127.0.0.1:<port>     (connector name: mariadb-cdc)
#   JETSUITE_TEST_MARIADB_DSN     jetsuite:jetsuite@tcp(127.0.0.1:<port>)/demo   (all rights on demo.*)
#   JETSUITE_TEST_MARIADB_SOCKET  <abs path>/mysqld.sock       (root without password through the socket)
#   JETSUITE_TEST_OPENSEARCH_URL / _CTL                        (from opensearch.sh)
#   JETSUITE_TEST_DEBEZIUM_SERVER <abs path>/debezium-server   (the distribution: run.sh, config/, lib/)
#   JETSUITE_TEST_DEBEZIUM_SERVER_JAVA_HOME  a JDK >= 21 (Debezium Server 3.x is built for Java 21)
#   JETSUITE_TEST_LOGS            <abs path>/.testenv/logs (tests may leave logs there: rehearsal.log)
#
# Tunables (environment):
#   JETSUITE_TESTENV_SERVICES  which to start, default "mariadb kafka connect opensearch debezium-server"
#                              (connect needs mariadb and kafka; debezium-server is only fetched)
#   JETSUITE_TESTENV_M2        Maven local repository (default: Maven's own, ~/.m2/repository, so jars
#                              are downloaded once per machine; .testenv/jars gets a copy per clone)
#   JETSUITE_TESTENV_TIMEOUT   seconds each readiness wait may take (default 120)
#
# A dependency that does not start makes the script print the tail of its log and exit non-zero.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/testenv
TE=$ROOT/.testenv
LOGS=$TE/logs
JARS=$TE/jars
SERVICES=${JETSUITE_TESTENV_SERVICES:-mariadb kafka connect opensearch debezium-server}
TIMEOUT=${JETSUITE_TESTENV_TIMEOUT:-120}
KAFKA_VERSION=3.9.1
# All of Debezium at one version: Debezium Server (the compose stack's) and the Kafka Connect
# connector. Maven Central serves debezium-server-dist 3.6.1.Final, but not the MariaDB
# connector's own artifacts at 3.6.1 (no pom, jar or plugin archive): its jar and dependencies
# are taken from the distribution's lib/ (debezium_plugin).
DEBEZIUM_VERSION=3.6.1.Final
MVN_DEP=org.apache.maven.plugins:maven-dependency-plugin:3.6.1

log() { printf '[testenv %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
wants() { [[ " $SERVICES " == *" $1 "* ]]; }

# fail_with NAME LOGFILE MESSAGE: say why a dependency did not start, with the tail of its log.
fail_with() {
	log "ERROR: $1 did not start: $3"
	if [[ -f $2 ]]; then
		log "---- last 40 lines of $2 ----"
		tail -n 40 "$2" >&2 || true
		log "----"
	fi
	exit 1
}

# free_port prints a loopback TCP port nobody listens on: random, above the usual defaults and
# below the kernel's ephemeral range, so that no outgoing connection takes it before the
# dependency binds it.
free_port() {
	local p i lo=20000 hi=32768
	if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
		read -r hi _ </proc/sys/net/ipv4/ip_local_port_range
		((hi > lo + 1000)) || { lo=10000; }
	fi
	for i in $(seq 200); do
		p=$((lo + RANDOM % (hi - lo)))
		[[ " ${USED_PORTS:-} " == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			USED_PORTS="${USED_PORTS:-} $p"
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

# ---------------------------------------------------------------------------------------------
# Installation (idempotent; only what is missing)

apt_install() {
	local SUDO=""
	[[ $(id -u) -ne 0 ]] && SUDO=sudo
	log "installing Debian packages: $*"
	$SUDO apt-get update -qq >"$LOGS/apt.log" 2>&1 || fail_with apt "$LOGS/apt.log" "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >>"$LOGS/apt.log" 2>&1 ||
		fail_with apt "$LOGS/apt.log" "apt-get install $* failed"
}

install_tools() {
	local pkgs=()
	# debezium-server: the compose rehearsal runs a MariaDB of its own for Debezium Server.
	if wants mariadb || wants debezium-server; then
		command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]] || pkgs+=(mariadb-server)
	fi
	command -v kcat >/dev/null || pkgs+=(kcat)
	command -v curl >/dev/null || pkgs+=(curl)
	if wants kafka || wants connect; then
		command -v java >/dev/null || pkgs+=(openjdk-17-jre-headless)
		command -v mvn >/dev/null || pkgs+=(maven)
	fi
	if ((${#pkgs[@]})); then apt_install "${pkgs[@]}"; fi
	export PATH=$PATH:/usr/sbin:/usr/bin
}

# fetch_jars NAME POM: copy the runtime class path of POM into $JARS/NAME, once per pom content.
fetch_jars() {
	local name=$1 pom=$2 stamp
	stamp=$(cat "$pom" | sha256sum | cut -c1-16)
	if [[ -f $JARS/$name/.stamp && $(cat "$JARS/$name/.stamp") == "$stamp" ]]; then return; fi
	log "fetching $name jars (Maven Central, cached in the Maven local repository)"
	rm -rf "${JARS:?}/$name"
	mvn -B -q ${JETSUITE_TESTENV_M2:+-Dmaven.repo.local=$JETSUITE_TESTENV_M2} -f "$pom" \
		"$MVN_DEP:copy-dependencies" -DincludeScope=runtime -DoutputDirectory="$JARS/$name" \
		>"$LOGS/mvn-$name.log" 2>&1 || fail_with maven "$LOGS/mvn-$name.log" "could not fetch $name jars"
	echo "$stamp" >"$JARS/$name/.stamp"
}

# fetch_debezium_server: Debezium Server's distribution (debezium-server-dist:tar.gz, about 780 MB,
# downloaded once into the Maven local repository) unpacked into $JARS/debezium-server, without
# the optional Cassandra connectors and scripting libraries (lib_opt) nothing here uses.
fetch_debezium_server() {
	local dir=$JARS/debezium-server dl=$JARS/debezium-dl
	if [[ -f $dir/.stamp && $(cat "$dir/.stamp") == "$DEBEZIUM_VERSION" ]]; then return; fi
	log "fetching Debezium Server $DEBEZIUM_VERSION (debezium-server-dist: downloaded once per machine, unpacked once per clone)"
	rm -rf "$dir" "$dl"
	mvn -B -q ${JETSUITE_TESTENV_M2:+-Dmaven.repo.local=$JETSUITE_TESTENV_M2} "$MVN_DEP:copy" \
		-Dartifact="io.debezium:debezium-server-dist:$DEBEZIUM_VERSION:tar.gz" \
		-DoutputDirectory="$dl" >"$LOGS/mvn-debezium-server.log" 2>&1 ||
		fail_with maven "$LOGS/mvn-debezium-server.log" "could not fetch debezium-server-dist"
	tar -xzf "$dl/debezium-server-dist-$DEBEZIUM_VERSION.tar.gz" -C "$JARS" \
		--exclude='debezium-server/connectors' --exclude='debezium-server/lib_opt' >>"$LOGS/mvn-debezium-server.log" 2>&1 ||
		fail_with debezium-server "$LOGS/mvn-debezium-server.log" "could not unpack debezium-server-dist"
	rm -rf "$dl"
	echo "$DEBEZIUM_VERSION" >"$dir/.stamp"
}

# fetch_debezium: the Kafka Connect plugin folder of the Debezium MariaDB connector, made of the
# jars the connector's plugin archive holds (its dependencies as debezium-connector-mysql's pom
# lists them, the MariaDB JDBC driver instead of MySQL's; Jackson, slf4j and Kafka's own jars are
# the worker's), taken from Debezium Server's lib/.
fetch_debezium() {
	local dir=$JARS/connect-plugins lib=$JARS/debezium-server/lib jar n
	if [[ -f $dir/.stamp && $(cat "$dir/.stamp") == "$DEBEZIUM_VERSION" ]]; then return; fi
	fetch_debezium_server
	log "assembling the Debezium MariaDB connector plugin $DEBEZIUM_VERSION"
	rm -rf "$dir"
	mkdir -p "$dir/debezium-connector-mariadb"
	for n in debezium-connector-mariadb debezium-connector-binlog debezium-connector-common debezium-api \
		debezium-util debezium-config debezium-openlineage-api debezium-connect-plugins debezium-ddl-parser \
		debezium-storage-file debezium-storage-kafka sketches-java antlr4-runtime mysql-binlog-connector-java \
		zstd-jni mariadb-java-client; do
		jar=$(compgen -G "$lib/$n-[0-9]*.jar" | head -n 1) || die "Debezium Server's lib/ has no $n jar"
		cp "$jar" "$dir/debezium-connector-mariadb/"
	done
	echo "$DEBEZIUM_VERSION" >"$dir/.stamp"
}

# java21_home prints the home of an installed JDK whose major version is at least 21 (Debezium
# Server 3.x is compiled for Java 21; the machine's default Java may be 17).
java21_home() {
	local j v
	for j in ${JAVA_HOME:+$JAVA_HOME/bin/java} /usr/lib/jvm/*/bin/java; do
		[[ -x $j ]] || continue
		v=$("$j" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
		if [[ ${v%%.*} =~ ^[0-9]+$ ]] && ((${v%%.*} >= 21)); then
			dirname "$(dirname "$j")"
			return 0
		fi
	done
	return 1
}

prepare_debezium_server() {
	fetch_debezium_server
	JETSUITE_TEST_DEBEZIUM_SERVER_JAVA_HOME=$(java21_home) ||
		die "no JDK >= 21 under /usr/lib/jvm (nor JAVA_HOME): Debezium Server $DEBEZIUM_VERSION needs Java 21"
	export JETSUITE_TEST_DEBEZIUM_SERVER=$JARS/debezium-server JETSUITE_TEST_DEBEZIUM_SERVER_JAVA_HOME
	log "Debezium Server $DEBEZIUM_VERSION at $JETSUITE_TEST_DEBEZIUM_SERVER (Java: $JETSUITE_TEST_DEBEZIUM_SERVER_JAVA_HOME)"
}

# ---------------------------------------------------------------------------------------------
# Process bookkeeping: every started process is recorded so that cleanup stops exactly those.

PIDS=()
track() { PIDS+=("$1"); echo "$1" >>"$DATA/pids"; }

stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

OPENSEARCH_STARTED=0
cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	if ((OPENSEARCH_STARTED)); then opensearch_down || log "opensearch_down failed"; fi
	# Reverse start order: Connect before Kafka, Kafka before MariaDB.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
	[[ -n ${DATA:-} && -d ${DATA:-} ]] && rm -rf "$DATA"
	exit "$rc"
}

# wait_for NAME LOGFILE PID CHECK...: run CHECK once a second until it succeeds, the process
# dies or TIMEOUT seconds pass.
wait_for() {
	local name=$1 logf=$2 pid=$3 i
	shift 3
	for ((i = 0; i < TIMEOUT; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		kill -0 "$pid" 2>/dev/null || fail_with "$name" "$logf" "the process exited"
		sleep 1
	done
	fail_with "$name" "$logf" "not ready after ${TIMEOUT}s"
}

# ---------------------------------------------------------------------------------------------
# MariaDB

start_mariadb() {
	local d=$DATA/mariadb
	MARIADB_PORT=$(free_port)
	MARIADB_SOCKET=$d/mysqld.sock
	mkdir -p "$d/data"
	mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$d/data" \
		--auth-root-authentication-method=normal --skip-test-db >"$LOGS/mariadb-install.log" 2>&1 ||
		fail_with mariadb "$LOGS/mariadb-install.log" "mariadb-install-db failed"
	mariadbd --no-defaults --user="$(id -un)" --datadir="$d/data" --socket="$MARIADB_SOCKET" \
		--pid-file="$d/mysqld.pid" --port="$MARIADB_PORT" --bind-address=127.0.0.1 --server-id=1 \
		--log-bin="$d/data/mysql-bin" --binlog-format=ROW --binlog-row-image=FULL --skip-name-resolve \
		--innodb-buffer-pool-size=64M --log-error="$LOGS/mariadb.log" >>"$LOGS/mariadb.log" 2>&1 &
	MARIADB_PID=$!
	track "$MARIADB_PID"
}

mariadb_ready() { mariadb --no-defaults -S "$MARIADB_SOCKET" -uroot -e 'select 1'; }

load_mariadb() {
	wait_for mariadb "$LOGS/mariadb.log" "$MARIADB_PID" mariadb_ready
	{
		cat "$HERE/customers.sql"
		cat <<-'SQL'
			CREATE USER 'debezium'@'%' IDENTIFIED BY 'dbz';
			GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR ON *.* TO 'debezium'@'%';
			CREATE USER 'jetsuite'@'%' IDENTIFIED BY 'jetsuite';
			GRANT ALL PRIVILEGES ON demo.* TO 'jetsuite'@'%';
		SQL
	} | mariadb --no-defaults -S "$MARIADB_SOCKET" -uroot >"$LOGS/mariadb-load.log" 2>&1 ||
		fail_with mariadb "$LOGS/mariadb-load.log" "loading customers.sql failed"
	export JETSUITE_TEST_MARIADB_DSN="jetsuite:jetsuite@tcp(127.0.0.1:$MARIADB_PORT)/demo"
	export JETSUITE_TEST_MARIADB_SOCKET=$MARIADB_SOCKET
	log "MariaDB ready on 127.0.0.1:$MARIADB_PORT (demo.CUSTOMERS loaded)"
}

# ---------------------------------------------------------------------------------------------
# Kafka (KRaft, broker + controller in one JVM)

log4j_props() {
	cat >"$1" <<-'EOF'
		log4j.rootLogger=INFO, stdout
		log4j.appender.stdout=org.apache.log4j.ConsoleAppender
		log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
		log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
		log4j.logger.org.apache.kafka.connect.runtime.isolation=WARN
		log4j.logger.org.reflections=ERROR
	EOF
}

start_kafka() {
	local d=$DATA/kafka cid
	KAFKA_PORT=$(free_port)
	local ctl
	ctl=$(free_port)
	mkdir -p "$d/data"
	cat >"$d/server.properties" <<-EOF
		process.roles=broker,controller
		node.id=1
		controller.quorum.voters=1@127.0.0.1:$ctl
		listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$ctl
		advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
		inter.broker.listener.name=PLAINTEXT
		controller.listener.names=CONTROLLER
		listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
		log.dirs=$d/data
		num.partitions=1
		auto.create.topics.enable=true
		offsets.topic.replication.factor=1
		offsets.topic.num.partitions=1
		transaction.state.log.replication.factor=1
		transaction.state.log.min.isr=1
		transaction.state.log.num.partitions=1
		group.initial.rebalance.delay.ms=0
		log.flush.interval.messages=9223372036854775807
	EOF
	log4j_props "$d/log4j.properties"
	KAFKA_JOPTS=(-Xms512m -Xmx512m -XX:+UseG1GC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
		-Dkafka.logs.dir="$d/logs" -Dlog4j.configuration="file:$d/log4j.properties")
	cid=$(java -cp "$JARS/kafka-libs/*" kafka.tools.StorageTool random-uuid 2>"$LOGS/kafka-format.log") ||
		fail_with kafka "$LOGS/kafka-format.log" "StorageTool random-uuid failed"
	java "${KAFKA_JOPTS[@]}" -cp "$JARS/kafka-libs/*" kafka.tools.StorageTool format -t "$cid" \
		-c "$d/server.properties" --ignore-formatted >>"$LOGS/kafka-format.log" 2>&1 ||
		fail_with kafka "$LOGS/kafka-format.log" "StorageTool format failed"
	java "${KAFKA_JOPTS[@]}" -cp "$JARS/kafka-libs/*" kafka.Kafka "$d/server.properties" >"$LOGS/kafka.log" 2>&1 &
	KAFKA_PID=$!
	track "$KAFKA_PID"
}

kafka_ready() { kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 2 | grep -q 'broker 1 at'; }

await_kafka() {
	wait_for kafka "$LOGS/kafka.log" "$KAFKA_PID" kafka_ready
	export JETSUITE_TEST_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
	log "Kafka ready on $JETSUITE_TEST_KAFKA_BROKERS"
}

# ---------------------------------------------------------------------------------------------
# Kafka Connect standalone with the Debezium MariaDB connector

start_connect() {
	local d=$DATA/connect
	CONNECT_PORT=$(free_port)
	mkdir -p "$d"
	cat >"$d/worker.properties" <<-EOF
		bootstrap.servers=127.0.0.1:$KAFKA_PORT
		key.converter=org.apache.kafka.connect.json.JsonConverter
		value.converter=org.apache.kafka.connect.json.JsonConverter
		key.converter.schemas.enable=false
		value.converter.schemas.enable=false
		offset.storage.file.filename=$d/connect.offsets
		offset.flush.interval.ms=1000
		plugin.path=$JARS/connect-plugins
		listeners=http://127.0.0.1:$CONNECT_PORT
	EOF
	# Like the demo's source connector (database.server.name asgard, table demo.customers), in
	# today's names; the full change-event envelope (no unwrap) so the CDC reader sees op/before/after.
	cat >"$d/mariadb-cdc.properties" <<-EOF
		name=mariadb-cdc
		connector.class=io.debezium.connector.mariadb.MariaDbConnector
		tasks.max=1
		database.hostname=127.0.0.1
		database.port=$MARIADB_PORT
		database.user=debezium
		database.password=dbz
		database.server.id=$((5400 + RANDOM % 1000))
		topic.prefix=asgard
		database.include.list=demo
		table.include.list=demo.CUSTOMERS
		include.schema.changes=false
		schema.history.internal=io.debezium.storage.file.history.FileSchemaHistory
		schema.history.internal.file.filename=$d/schema-history.dat
		poll.interval.ms=100
	EOF
	log4j_props "$d/log4j.properties"
	java -Xms256m -Xmx512m -XX:+UseG1GC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
		-Dlog4j.configuration="file:$d/log4j.properties" -cp "$JARS/connect-libs/*" \
		org.apache.kafka.connect.cli.ConnectStandalone "$d/worker.properties" "$d/mariadb-cdc.properties" \
		>"$LOGS/connect.log" 2>&1 &
	CONNECT_PID=$!
	track "$CONNECT_PID"
}

connect_running() {
	curl -fsS "http://127.0.0.1:$CONNECT_PORT/connectors/mariadb-cdc/status" |
		grep -q '"connector":{"state":"RUNNING".*"tasks":\[{"id":0,"state":"RUNNING"'
}

# The initial snapshot (20 rows) is in the topic: the connector is streaming the binlog.
snapshot_done() {
	[[ $(kcat -b "127.0.0.1:$KAFKA_PORT" -C -t asgard.demo.CUSTOMERS -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l) -ge 20 ]]
}

await_connect() {
	wait_for connect "$LOGS/connect.log" "$CONNECT_PID" connect_running
	wait_for connect "$LOGS/connect.log" "$CONNECT_PID" snapshot_done
	export JETSUITE_TEST_KAFKA_CONNECT="http://127.0.0.1:$CONNECT_PORT"
	log "Kafka Connect ready on $JETSUITE_TEST_KAFKA_CONNECT (snapshot of demo.CUSTOMERS in asgard.demo.CUSTOMERS)"
}

# ---------------------------------------------------------------------------------------------

start_all() {
	mkdir -p "$LOGS" "$JARS"
	if wants connect && ! { wants kafka && wants mariadb; }; then die "connect needs kafka and mariadb"; fi
	install_tools
	if wants kafka; then fetch_jars kafka-libs "$HERE/pom-kafka.xml"; fi
	if wants connect; then
		fetch_jars connect-libs "$HERE/pom-connect.xml"
		fetch_debezium
	fi
	if wants debezium-server; then prepare_debezium_server; fi
	# Where tests may leave a log of their own for after the run (the compose rehearsal's).
	export JETSUITE_TEST_LOGS=$LOGS
	rm -f "$LOGS/rehearsal.log"
	DATA=$(mktemp -d "$TE/run.XXXXXX")
	: >"$DATA/pids"
	local t0=$SECONDS
	# Start the slow JVM first; MariaDB initialises meanwhile.
	if wants kafka; then start_kafka; fi
	if wants mariadb; then
		start_mariadb
		load_mariadb
	fi
	if wants kafka; then await_kafka; fi
	if wants connect; then
		start_connect
		await_connect
	fi
	if wants opensearch && [[ -f $HERE/opensearch.sh ]]; then
		# shellcheck source=/dev/null
		source "$HERE/opensearch.sh"
		OPENSEARCH_STARTED=1
		opensearch_up || die "OpenSearch did not start (see its logs under $LOGS)"
		[[ -n ${JETSUITE_TEST_OPENSEARCH_URL:-} ]] || die "opensearch_up did not export JETSUITE_TEST_OPENSEARCH_URL"
		log "OpenSearch ready on $JETSUITE_TEST_OPENSEARCH_URL"
	fi
	log "all dependencies up in $((SECONDS - t0))s"
}

write_env() {
	local v
	{
		for v in JETSUITE_TEST_KAFKA_BROKERS JETSUITE_TEST_KAFKA_CONNECT JETSUITE_TEST_MARIADB_DSN \
			JETSUITE_TEST_MARIADB_SOCKET JETSUITE_TEST_OPENSEARCH_URL JETSUITE_TEST_OPENSEARCH_CTL \
			JETSUITE_TEST_DEBEZIUM_SERVER JETSUITE_TEST_DEBEZIUM_SERVER_JAVA_HOME JETSUITE_TEST_LOGS; do
			[[ -n ${!v:-} ]] && printf 'export %s=%q\n' "$v" "${!v}"
		done
		printf 'JETSUITE_TESTENV_DATA=%q\n' "$DATA"
	} >"$TE/env.sh"
}

case "${1:-}" in
"" | -h | --help)
	sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	[[ -n ${1:-} ]] && exit 0
	exit 2
	;;
--up)
	[[ -f $TE/env.sh ]] && die "already up ($TE/env.sh exists); run --down first"
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	start_all
	write_env
	trap - EXIT INT TERM
	log "up; run: source $TE/env.sh   (stop with: bash testenv/run.sh --down)"
	;;
--down)
	[[ -f $TE/env.sh ]] || die "nothing is up ($TE/env.sh missing)"
	# shellcheck source=/dev/null
	source "$TE/env.sh"
	# opensearch_down knows the node only in the shell that started it: stop it by its ctl.
	if [[ -n ${JETSUITE_TEST_OPENSEARCH_CTL:-} && -x $JETSUITE_TEST_OPENSEARCH_CTL ]]; then
		"$JETSUITE_TEST_OPENSEARCH_CTL" stop || log "stopping OpenSearch failed"
		rm -rf "$(dirname "$JETSUITE_TEST_OPENSEARCH_CTL")"
	fi
	if [[ -f $JETSUITE_TESTENV_DATA/pids ]]; then
		mapfile -t pids <"$JETSUITE_TESTENV_DATA/pids"
		for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
	fi
	rm -rf "$JETSUITE_TESTENV_DATA" "$TE/env.sh"
	log "down"
	;;
*)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	start_all
	set +e
	"$@"
	rc=$?
	set -e
	log "command exited with $rc; stopping dependencies"
	exit "$rc"
	;;
esac
