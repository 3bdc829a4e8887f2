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
#   MANDATE_DATASTORE       Mandate's datastore: embedded or postgres [embedded]
#   MANDATE_DATASTORE_URI   with postgres: URI of an existing database on the
#                           PostgreSQL server to use [$SPICEDB_DATASTORE_URI]
#   SPICEDB_DATASTORE       SpiceDB's datastore: memory or postgres [memory]
#   SPICEDB_DATASTORE_URI   with postgres: URI of an existing database on the
#                           PostgreSQL server to use []
#   POSTGRES_PID            process ID of that server's postmaster, when it
#                           runs on this host, to report its CPU time []
#   OUT_DIR                 folder for the JSON reports and logs [a new temp dir]
#
# By default Mandate runs `mandate serve` with its embedded store on disk,
# which syncs every write to disk, and SpiceDB runs its in-memory datastore,
# which keeps nothing across a restart. With a datastore set to postgres,
# the script connects with psql to the database that the URI names and
# creates a new database for that server on the same PostgreSQL server. It
# migrates that database with `mandate migrate` or `spicedb datastore
# migrate head` and drops it at exit, so no data from an earlier run is
# counted. The URI must be in the
# postgres://user@host:port/database?options form, and its user needs the
# CREATEDB privilege. With POSTGRES_PID set, the script also reports the CPU
# time of the postmaster and its child processes during each run, which the
# server's own CPU time does not include. Both servers, the load tester and
# a PostgreSQL server on this host share this machine's cores.
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
mandate_datastore="${MANDATE_DATASTORE:-embedded}"
spicedb_datastore="${SPICEDB_DATASTORE:-memory}"
spicedb_datastore_uri="${SPICEDB_DATASTORE_URI:-}"
mandate_datastore_uri="${MANDATE_DATASTORE_URI:-$spicedb_datastore_uri}"
postgres_pid="${POSTGRES_PID:-}"
# mandate reads every flag not given from a MANDATE_* variable. These two
# name the PostgreSQL server, not the database that serve is to use.
unset MANDATE_DATASTORE MANDATE_DATASTORE_URI
key="compare-$$-${RANDOM}"
read -r -a extra_args <<<"${LOADTEST_ARGS:-}"
read -r -a mandate_serve_args <<<"${MANDATE_SERVE_ARGS:-}"

case "$mandate_datastore" in
embedded | postgres) ;;
*)
	echo "compare.sh: invalid MANDATE_DATASTORE=$mandate_datastore: use embedded or postgres" >&2
	exit 2
	;;
esac
case "$spicedb_datastore" in
memory | postgres) ;;
*)
	echo "compare.sh: invalid SPICEDB_DATASTORE=$spicedb_datastore: use memory or postgres" >&2
	exit 2
	;;
esac
if [[ "$mandate_datastore" == postgres && -z "$mandate_datastore_uri" ]]; then
	echo "compare.sh: MANDATE_DATASTORE=postgres needs MANDATE_DATASTORE_URI or SPICEDB_DATASTORE_URI" >&2
	exit 2
fi
if [[ "$spicedb_datastore" == postgres && -z "$spicedb_datastore_uri" ]]; then
	echo "compare.sh: SPICEDB_DATASTORE=postgres needs SPICEDB_DATASTORE_URI, such as postgres://user@127.0.0.1:5432/postgres?sslmode=disable" >&2
	exit 2
fi
if [[ "$mandate_datastore" == postgres || "$spicedb_datastore" == postgres ]] && ! command -v psql >/dev/null; then
	echo "compare.sh: a postgres datastore needs psql on PATH to create its database; install the postgresql-client package" >&2
	exit 2
fi
if [[ -n "$postgres_pid" && ! -r "/proc/$postgres_pid/stat" ]]; then
	echo "compare.sh: POSTGRES_PID=$postgres_pid is not a process on this host" >&2
	exit 2
fi

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

# Databases that create_database made, as "admin-URI database" lines,
# dropped at exit.
created_databases=()

# database_uri URI NAME prints URI with its database replaced by NAME.
database_uri() {
	local uri="$1" name="$2"
	if [[ ! "$uri" =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$ ]]; then
		echo "compare.sh: invalid PostgreSQL URI $uri: use postgres://user@host:port/database" >&2
		return 1
	fi
	echo "${BASH_REMATCH[1]}/$name${BASH_REMATCH[4]}"
}

# create_database URI NAME creates database NAME on the server of URI,
# connecting to the database URI names, and sets created_uri to NAME's URI.
# It sets a variable rather than printing, because a command substitution
# would run it in a subshell and lose the entry in created_databases.
create_database() {
	local uri="$1" name="$2"
	created_uri="$(database_uri "$uri" "$name")"
	psql "$uri" -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE \"$name\"" >&2
	created_databases+=("$uri $name")
}

drop_databases() {
	local entry
	for entry in ${created_databases[@]+"${created_databases[@]}"}; do
		psql "${entry% *}" -v ON_ERROR_STOP=1 -q -c "DROP DATABASE IF EXISTS \"${entry##* }\"" >&2 ||
			echo "compare.sh: failed to drop database ${entry##* }; drop it by hand" >&2
	done
}

# database_size URI prints the size of the database URI names.
database_size() {
	psql "$1" -At -c 'SELECT pg_size_pretty(pg_database_size(current_database()))'
}

# postgres_cpu_ticks prints the CPU time, in clock ticks, used by process
# $postgres_pid, by its children that have exited and by those running.
postgres_cpu_ticks() {
	local total=0 file line fields
	for file in /proc/[0-9]*/stat; do
		{ line="$(<"$file")"; } 2>/dev/null || continue
		# The command name, field 2, is in parentheses and may contain spaces.
		read -r -a fields <<<"${line##*) }"
		# fields[1] is the parent's process ID, and fields[11..14] are
		# utime, stime, cutime and cstime.
		if [[ "${file#/proc/}" == "$postgres_pid/stat" ]]; then
			total=$((total + fields[11] + fields[12] + fields[13] + fields[14]))
		elif [[ "${fields[1]}" == "$postgres_pid" ]]; then
			total=$((total + fields[11] + fields[12]))
		fi
	done
	echo "$total"
}

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
	drop_databases
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

# measure NAME PORT [DATABASE_URI] runs the load test against the server
# already started as $server_pid: loads the data set, records memory, then
# runs the measured repeats. It writes NAME-load.json, NAME-N.json,
# NAME-N.txt and NAME-memory.txt into $out_dir. With DATABASE_URI, the
# server's PostgreSQL database, it runs ANALYZE after loading.
measure() {
	local name="$1" port="$2" database_uri="${3:-}"
	local addr="127.0.0.1:$port"
	wait_for_port "$port"
	local rss_empty
	rss_empty="$(status_kib "$server_pid" VmRSS)"

	local common=(--addr "$addr" --key "$key" --schema "$schema" --relationships "$relationships"
		--seed "$seed" --progress-interval 10s "${extra_args[@]}")
	echo "compare.sh: $name: loading $relationships relationships" >&2
	"$mandate" loadtest "${common[@]}" --load-only --json >"$out_dir/$name-load.json"
	if [[ -n "$database_uri" ]]; then
		# Autovacuum would analyze the new rows within about a minute
		# (autovacuum_naptime), so the first run would otherwise use query
		# plans made for an empty or partly loaded table.
		echo "compare.sh: $name: running ANALYZE on its database" >&2
		psql "$database_uri" -v ON_ERROR_STOP=1 -q -c ANALYZE
	fi
	sleep 2
	local rss_loaded anon_loaded
	rss_loaded="$(status_kib "$server_pid" VmRSS)"
	anon_loaded="$(status_kib "$server_pid" RssAnon)"

	for run in $(seq 1 "$repeats"); do
		echo "compare.sh: $name: run $run of $repeats, $duration" >&2
		local status=0 ticks_before=""
		if [[ -n "$postgres_pid" ]]; then
			ticks_before="$(postgres_cpu_ticks)"
		fi
		"$mandate" loadtest "${common[@]}" --skip-load --mix "$mix" --concurrency "$concurrency" \
			--consistency "$consistency" --duration "$duration" --server-pid "$server_pid" \
			--report-file "$out_dir/$name-$run.json" >"$out_dir/$name-$run.txt" || status=$?
		if [[ -n "$postgres_pid" ]]; then
			echo "$(($(postgres_cpu_ticks) - ticks_before))" >"$out_dir/$name-$run.postgres-ticks"
		fi
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
run_id="$(date -u +%Y%m%d%H%M%S)_$$"
mandate_database_uri=""
if [[ "$mandate_datastore" == postgres ]]; then
	create_database "$mandate_datastore_uri" "mandate_compare_$run_id"
	mandate_database_uri="$created_uri"
	echo "compare.sh: migrating Mandate's new database mandate_compare_$run_id" >&2
	"$mandate" migrate --datastore postgres --datastore-uri "$mandate_database_uri" >"$out_dir/mandate-migrate.log" 2>&1
	mandate_args+=(--datastore postgres --datastore-uri "$mandate_database_uri")
fi
echo "== mandate serve ${mandate_args[*]/$key/KEY}"
"$mandate" serve "${mandate_args[@]}" >"$out_dir/mandate-server.log" 2>&1 &
server_pid=$!
measure mandate "$mandate_port" "$mandate_database_uri"
mandate_disk="$(du -sh "$data_parent/mandate"/* | awk '{ printf "%s %s  ", $2, $1 }')"
if [[ -n "$mandate_database_uri" ]]; then
	mandate_disk+="database mandate_compare_$run_id $(database_size "$mandate_database_uri")"
fi
stop_server

spicedb_datastore_args=(--datastore-engine memory)
spicedb_database_uri=""
if [[ "$spicedb_datastore" == postgres ]]; then
	create_database "$spicedb_datastore_uri" "spicedb_compare_$run_id"
	spicedb_database_uri="$created_uri"
	spicedb_datastore_args=(--datastore-engine postgres --datastore-conn-uri "$spicedb_database_uri")
	echo "compare.sh: migrating SpiceDB's new database spicedb_compare_$run_id" >&2
	"$spicedb" datastore migrate head "${spicedb_datastore_args[@]}" --log-level warn \
		>"$out_dir/spicedb-migrate.log" 2>&1
fi
echo "compare.sh: starting SpiceDB $spicedb_version on 127.0.0.1:$spicedb_port" >&2
spicedb_args=(--grpc-preshared-key "$key" --grpc-addr "127.0.0.1:$spicedb_port"
	"${spicedb_datastore_args[@]}" --telemetry-endpoint= --skip-release-check
	--http-enabled=false --metrics-enabled=false --dispatch-cluster-enabled=false
	--log-level warn)
echo "== spicedb serve ${spicedb_args[*]/$key/KEY}"
"$spicedb" serve "${spicedb_args[@]}" >"$out_dir/spicedb-server.log" 2>&1 &
server_pid=$!
measure spicedb "$spicedb_port" "$spicedb_database_uri"
stop_server
spicedb_disk=""
if [[ -n "$spicedb_database_uri" ]]; then
	spicedb_disk="database spicedb_compare_$run_id $(database_size "$spicedb_database_uri")"
fi

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
echo "datastores: mandate $mandate_datastore, spicedb $spicedb_datastore"
echo "resident memory of the server process (VmRSS, MiB): empty server; after loading $relationships relationships, in all and"
echo "its anonymous part (RssAnon, without mapped files); growth per million relationships; peak (VmHWM) at the end"
for name in mandate spicedb; do
	read -r _ empty loaded anon peak <"$out_dir/$name-memory.txt"
	awk -v name="$name" -v empty="$empty" -v loaded="$loaded" -v anon="$anon" -v peak="$peak" -v n="$relationships" \
		'BEGIN { printf "%-8s empty %7.1f  loaded %7.1f (anon %7.1f)  per million %8.1f  peak %7.1f\n",
			name, empty / 1024, loaded / 1024, anon / 1024, (loaded - empty) / 1024 / (n / 1e6), peak / 1024 }'
done
# total_calls FILE prints the calls of all kinds in a JSON report.
total_calls() {
	awk '/"total": \{/ { in_total = 1 } in_total && /"calls":/ { gsub(/[^0-9]/, ""); print; exit }' "$1"
}

if [[ -n "$postgres_pid" ]]; then
	echo
	echo "CPU time of PostgreSQL (process $postgres_pid and its children) per run, which the server CPU above leaves out"
	ticks_per_second="$(getconf CLK_TCK)"
	for name in mandate spicedb; do
		for run in $(seq 1 "$repeats"); do
			ticks="$(<"$out_dir/$name-$run.postgres-ticks")"
			calls="$(total_calls "$out_dir/$name-$run.json")"
			server_ms="$(awk '/"server_ms_per_call":/ { gsub(/[^0-9.]/, ""); print; exit }' "$out_dir/$name-$run.json")"
			awk -v name="$name" -v run="$run" -v ticks="$ticks" -v hz="$ticks_per_second" -v calls="$calls" -v server_ms="${server_ms:-0}" \
				'BEGIN { seconds = ticks / hz; per_call = calls > 0 ? seconds * 1000 / calls : 0
					printf "%-8s run %d  PostgreSQL CPU-s %7.1f  per call %7.3f ms  server and PostgreSQL per call %7.3f ms\n",
						name, run, seconds, per_call, server_ms + per_call }'
		done
	done
fi

echo
echo "Mandate's data directory after its runs (du -sh): ${mandate_disk//$data_parent\/mandate\//}"
if [[ -n "$spicedb_disk" ]]; then
	echo "SpiceDB's PostgreSQL database after its runs: $spicedb_disk"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "reports: $out_dir"
