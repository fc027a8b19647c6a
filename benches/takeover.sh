#!/usr/bin/env bash
# The takeover time of the shared journal (issue 14): from the kill -9 of controller 1 to
# controller 2 running its first action of the run, on a throwaway PostgreSQL and a lab host.
#
#   benches/takeover.sh [ROUNDS] [TTL_SECS]     (default 3 rounds, TTL 5 s; needs postgresql, sshd)
#
# Each round: controller 1 (its own working directory and HOME) applies a two-step runbook
# with RUNBOOK_LEASE_TTL=TTL; its first step `hold` waits on the host for a file. Once `hold`
# runs, the file is created and controller 1 is killed (SIGKILL) at once: `hold` ends on the
# host, recorded by its wrapper, and nothing has recorded it in the journal. Controller 2 (another
# working directory and HOME) runs `runbook resume RUN` every 0.2 s, as an operator's
# `watch` would, until it is not refused by the live lease (exit 6); it then takes the run,
# settles `hold` from the host's record and starts `after`. The figure is the time from the
# kill to controller 2's `action_started` of `after` (JSON events, timestamped as they arrive),
# printed with the lease's TTL and the target (TTL + 2 s) beside it, then the median.
#
# RUNBOOK=path/to/runbook picks the binary (default: target/release/runbook if built, else
# target/debug/runbook). PostgreSQL runs as the `postgres` user (it refuses root).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
ttl=${2:-5}
runbook=${RUNBOOK:-}
if [ -z "$runbook" ]; then
  if [ -x target/release/runbook ]; then runbook=$PWD/target/release/runbook; else runbook=$PWD/target/debug/runbook; fi
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d /tmp/takeover-bench.XXXXXX)
chown postgres: "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pg() { runuser -u postgres -- "$@"; }
cleanup() {
  pg "$bin/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
  "$runbook" lab down --dir "$work/lab" --purge >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
pg "$bin/initdb" -D "$work/data" -U runbook --auth=trust -E UTF8 --no-sync >/dev/null
pg "$bin/pg_ctl" -D "$work/data" -o "-p $port -k $work -c listen_addresses=127.0.0.1" \
  -l "$work/postgres.log" -w start >/dev/null
pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U runbook runbook
url="postgres://runbook@127.0.0.1:$port/runbook?sslmode=disable"
"$runbook" lab up --dir "$work/lab" -n 1 >/dev/null
inventory=$work/lab/inventory.yaml
root=$work/lab/hosts/a/root

now() { date +%s.%N; }
figures=()
for round in $(seq 1 "$rounds"); do
  rm -f "$root/go"
  rb=$work/takeover-$round.yaml
  cat >"$rb" <<YAML
apiVersion: runbook/v1
kind: Runbook
metadata: {name: takeover-$round, version: 1.0.0}
steps:
  - {id: hold, module: shell, on: a, with: {cmd: "while [ ! -e \$RUNBOOK_HOST_ROOT/go ]; do sleep 0.05; done"}}
  - {id: after, module: shell, on: a, needs: [hold], with: {cmd: "true"}}
YAML
  for c in one two; do mkdir -p "$work/$c-$round/home"; done
  events=$work/one-$round.jsonl
  (cd "$work/one-$round" && HOME=$PWD/home RUNBOOK_LEASE_TTL=$ttl exec "$runbook" apply "$rb" \
    -i "$inventory" --format json --state "$url" >"$events" 2>/dev/null) &
  one=$!
  until grep -q '"event":"action_started".*"hold@a"' "$events" 2>/dev/null \
    && [ -n "$(find "$root/.runbook/actions" -name 'hold@a,*.pgid' 2>/dev/null)" ]; do sleep 0.02; done
  run=$(head -1 "$events" | sed 's/.*"run_id":"\([^"]*\)".*/\1/')
  touch "$root/go"
  kill -9 "$one"
  killed=$(now)
  wait "$one" 2>/dev/null || true
  started=""
  while [ -z "$started" ]; do
    out=$work/two-$round.jsonl
    set +e
    (cd "$work/two-$round" && HOME=$PWD/home RUNBOOK_LEASE_TTL=$ttl "$runbook" resume "$run" \
      --format json --state "$url" 2>/dev/null) | while IFS= read -r line; do
        case "$line" in *'"event":"action_started"'*'"after@a"'*) now >"$out.started";; esac
      done
    set -e
    if [ -f "$out.started" ]; then started=$(cat "$out.started"); else sleep 0.2; fi
  done
  secs=$(echo "$started - $killed" | bc -l)
  printf 'round %d: takeover %.2f s (TTL %s s, target %s s)\n' "$round" "$secs" "$ttl" "$((ttl + 2))"
  figures+=("$secs")
done
median=$(printf '%s\n' "${figures[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
printf 'median takeover %.2f s over %d rounds (TTL %s s, target TTL + 2 s = %s s)\n' "$median" "$rounds" "$ttl" "$((ttl + 2))"
