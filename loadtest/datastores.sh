#!/usr/bin/env bash
# Measures check and write throughput of mandate serve on the embedded
# store and on PostgreSQL, one after the other, with the same load test.
# It starts its own PostgreSQL on 127.0.0.1:55439 as the postgres user
# (run it as root on a Debian machine with the postgresql package) and
# stops everything it started by process id. Reports go to $OUT.
set -euo pipefail
cd "$(dirname -- "$0")/.."
OUT=${OUT:-/tmp/mandate-datastores}
M=$OUT/mandate
mkdir -p "$OUT"
go build -o "$M" ./cmd/mandate
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | head -1)
rm -rf $OUT/pg $OUT/embedded $OUT/pgdata $OUT/*.loaded
mkdir -p $OUT/pgdata && chown postgres $OUT/pgdata
runuser -u postgres -- $PGBIN/initdb -D $OUT/pgdata -U mandate --auth=trust >/dev/null
runuser -u postgres -- $PGBIN/postgres -D $OUT/pgdata -p 55439 -k /tmp -c listen_addresses=127.0.0.1 > $OUT/pg.log 2>&1 &
PGPID=$!
sleep 3
runuser -u postgres -- $PGBIN/createdb -h 127.0.0.1 -p 55439 -U mandate mandate
URI="postgres://mandate@127.0.0.1:55439/mandate?sslmode=disable"
$M migrate --datastore postgres --datastore-uri "$URI" >/dev/null

run() { # name, extra serve args...
  local name=$1; shift
  $M serve --grpc-addr 127.0.0.1:50091 --grpc-preshared-key k --data-dir $OUT/$name --default-schema=false --audit=false "$@" > $OUT/$name.serve.log 2>&1 &
  local pid=$!
  sleep 2
  for mix in check=100 write=100; do
    nice -n 5 $M loadtest --addr 127.0.0.1:50091 --key k --schema agents --relationships 20000 --mix $mix \
      --concurrency 8 --duration 30s --progress-interval 0 --server-pid $pid --report-file $OUT/$name.$mix.json \
      $( [ -f $OUT/$name.loaded ] && echo --skip-load ) > $OUT/$name.$mix.txt 2>&1 || true
    touch $OUT/$name.loaded
  done
  kill $pid; wait $pid || true
}
run embedded
run pg --datastore postgres --datastore-uri "$URI"
kill $PGPID
echo done
