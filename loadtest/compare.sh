#!/usr/bin/env bash
# Runs the same `mandate loadtest` against Mandate and against SpiceDB, one
# server at a time, on 127.0.0.1. It prints each run's report, the ratios
# of throughput and p50/p99 latency per kind of call, and each server's
# resident memory after loading the data set.
#
# Settings come from environment variables (defaults in brackets):
#   LOADTEST_DURATION       length of each measured run [60s]
#   LOADTEST_REPEATS        measured runs per server [3]
#   LOADTEST_RELATIONSHIPS  size of the data set [100000]
#   LOADTEST_SCHEMA         scenario: agents or docs [agents]
#   LOADTEST_MIX            call mix [check=80,bulk=10,lookup=5,write=5]
#   LOADTEST_CONCURRENCY    workers [16]
#   LOADTEST_CONSISTENCY    consistency of reads [at_least_as_fresh]
#   LOADTEST_SEED           seed of the data set and requests [1]
#   LOADTEST_ARGS           more `mandate loadtest` flags, split on spaces []
#   MANDATE_PORT            Mandate's gRPC port [50151]
#   SPICEDB_PORT            SpiceDB's gRPC port [50152]
#   MANDATE_DATA_PARENT     folder for Mandate's embedded store [a new temp dir]
#   MANDATE_SERVE_ARGS      more `mandate serve` flags, split on spaces, such
#                           as --audit=false []
#   SPICEDB_VERSION         SpiceDB release to install and run [v1.56.2]
#   OUT_DIR                 folder for the JSON reports and logs [a new temp dir]
#
# Mandate runs `mandate serve` with its embedded store on disk, which syncs
# every write to disk. SpiceDB runs its in-memory datastore, which keeps
# nothing across a restart. Both servers and the load tester share this
# machine's cores.
set -euo pipefail

cd "$(dirname -- "$0")/.."

duration="${LOADTEST_DURATION:-60s}"
repeats="${LOADTEST_REPEATS:-3}"
relationships="${LOADTEST_RELATIONSHIPS:-100000}"
schema="${LOADTEST_SCHEMA:-agents}"
mix="${LOADTEST_MIX:-check=80,bulk=10,lookup=5,write=5}"
concurrency="${LOADTEST_CONCURRENCY:-16}"
consistency="${LOADTEST_CONSISTENCY:-at_least_as_fresh}"
seed="${LOADTEST_SEED:-1}"
mandate_port="${MANDATE_PORT:-50151}"
spicedb_port="${SPICEDB_PORT:-50152}"
spicedb_version="${SPICEDB_VERSION:-v1.56.2}"
out_dir="${OUT_DIR:-$(mktemp -d -t mandate-compare.XXXXXX)}"
# The script deletes Mandate's store at exit only when it created the folder.
if [[ -n "${MANDATE_DATA_PARENT:-}" ]]; then
	data_parent="$MANDATE_DATA_PARENT"
	created_data_parent=""
else
	data_parent="$(mktemp -d -t mandate-data.XXXXXX)"
	created_data_parent="$data_parent"
fi
key="compare-$$-${RANDOM}"
read -r -a extra_args <<<"${LOADTEST_ARGS:-}"
read -r -a mandate_serve_args <<<"${MANDATE_SERVE_ARGS:-}"

mkdir -p "$out_dir"
echo "compare.sh: writing reports and logs to $out_dir" >&2

echo "compare.sh: building mandate" >&2
go build -o "$out_dir/mandate" ./cmd/mandate
mandate="$out_dir/mandate"

spicedb="$(go env GOPATH)/bin/spicedb"
if [[ ! -x "$spicedb" ]] || ! "$spicedb" version 2>/dev/null | grep -qF "$spicedb_version"; then
	echo "compare.sh: installing SpiceDB $spicedb_version (a few minutes the first time)" >&2
	go install "github.com/authzed/spicedb/cmd/spicedb@${spicedb_version}"
fi

server_pid=""
stop_server() {
	if [[ -n "$server_pid" ]]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=""
	fi
}
cleanup() {
	stop_server
	if [[ -n "$created_data_parent" ]]; then
		rm -rf -- "$created_data_parent"
	fi
}
trap cleanup EXIT

# wait_for_port waits until something listens on 127.0.0.1:$1, or fails
# after 60 seconds or when the server process has exited.
wait_for_port() {
	local port="$1"
	for _ in $(seq 1 600); do
		if ! kill -0 "$server_pid" 2>/dev/null; then
			echo "compare.sh: server process $server_pid exited before listening on port $port" >&2
			return 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "compare.sh: timed out after 60s waiting for a server on 127.0.0.1:$port" >&2
	return 1
}

# status_kib prints a field of /proc/PID/status, such as VmRSS, in KiB.
status_kib() {
	awk -v field="$2:" '$1 == field { print $2 }' "/proc/$1/status"
}

# measure NAME PORT runs the load test against the server already started
# as $server_pid: loads the data set, records memory, then runs the
# measured repeats. It writes NAME-load.json, NAME-N.json, NAME-N.txt and
# NAME-memory.txt into $out_dir.
measure() {
	local name="$1" port="$2"
	local addr="127.0.0.1:$port"
	wait_for_port "$port"
	local rss_empty
	rss_empty="$(status_kib "$server_pid" VmRSS)"

	local common=(--addr "$addr" --key "$key" --schema "$schema" --relationships "$relationships"
		--seed "$seed" --progress-interval 10s "${extra_args[@]}")
	echo "compare.sh: $name: loading $relationships relationships" >&2
	"$mandate" loadtest "${common[@]}" --load-only --json >"$out_dir/$name-load.json"
	sleep 2
	local rss_loaded anon_loaded
	rss_loaded="$(status_kib "$server_pid" VmRSS)"
	anon_loaded="$(status_kib "$server_pid" RssAnon)"

	for run in $(seq 1 "$repeats"); do
		echo "compare.sh: $name: run $run of $repeats, $duration" >&2
		local status=0
		"$mandate" loadtest "${common[@]}" --skip-load --mix "$mix" --concurrency "$concurrency" \
			--consistency "$consistency" --duration "$duration" --server-pid "$server_pid" \
			--report-file "$out_dir/$name-$run.json" >"$out_dir/$name-$run.txt" || status=$?
		echo "== $name, run $run (exit status $status)"
		cat "$out_dir/$name-$run.txt"
		echo
		if [[ ! -s "$out_dir/$name-$run.json" ]]; then
			echo "compare.sh: $name run $run wrote no report; see the output above" >&2
			return 1
		fi
	done
	local rss_peak
	rss_peak="$(status_kib "$server_pid" VmHWM)"
	echo "$name $rss_empty $rss_loaded $anon_loaded $rss_peak" >"$out_dir/$name-memory.txt"
}

# Start Mandate with an empty schema, as SpiceDB starts, where serve would
# otherwise install its Agent IAM schema, whose core definitions the
# scenario's schema may not replace.
mandate_args=(--grpc-addr "127.0.0.1:$mandate_port" --grpc-preshared-key "$key"
	--data-dir "$data_parent/mandate" --log-level warn "${mandate_serve_args[@]}")
if "$mandate" serve --help | grep -q -- '--default-schema'; then
	mandate_args+=(--default-schema=false)
fi
echo "== mandate serve ${mandate_args[*]/$key/KEY}"
"$mandate" serve "${mandate_args[@]}" >"$out_dir/mandate-server.log" 2>&1 &
server_pid=$!
measure mandate "$mandate_port"
mandate_disk="$(du -sh "$data_parent/mandate"/* | awk '{ printf "%s %s  ", $2, $1 }')"
stop_server

echo "compare.sh: starting SpiceDB $spicedb_version on 127.0.0.1:$spicedb_port" >&2
"$spicedb" serve --grpc-preshared-key "$key" --grpc-addr "127.0.0.1:$spicedb_port" \
	--datastore-engine memory --telemetry-endpoint= --skip-release-check \
	--http-enabled=false --metrics-enabled=false --dispatch-cluster-enabled=false \
	--log-level warn >"$out_dir/spicedb-server.log" 2>&1 &
server_pid=$!
measure spicedb "$spicedb_port"
stop_server

list_reports() {
	local files=()
	for run in $(seq 1 "$repeats"); do
		files+=("$out_dir/$1-$run.json")
	done
	local IFS=,
	echo "${files[*]}"
}

echo "== comparison"
"$mandate" loadtest compare --a-name mandate --a "$(list_reports mandate)" \
	--b-name spicedb --b "$(list_reports spicedb)"

echo
echo "resident memory (VmRSS, MiB): empty server; after loading $relationships relationships, in all and"
echo "its anonymous part (RssAnon, without mapped files); growth per million relationships; peak (VmHWM) at the end"
for name in mandate spicedb; do
	read -r _ empty loaded anon peak <"$out_dir/$name-memory.txt"
	awk -v name="$name" -v empty="$empty" -v loaded="$loaded" -v anon="$anon" -v peak="$peak" -v n="$relationships" \
		'BEGIN { printf "%-8s empty %7.1f  loaded %7.1f (anon %7.1f)  per million %8.1f  peak %7.1f\n",
			name, empty / 1024, loaded / 1024, anon / 1024, (loaded - empty) / 1024 / (n / 1e6), peak / 1024 }'
done
echo
echo "Mandate's data directory after its runs (du -sh): ${mandate_disk//$data_parent\/mandate\//}"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "reports: $out_dir"
