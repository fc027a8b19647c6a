#!/usr/bin/env bash
# The outage (and marked write freeze) of the GT.M runbooks other than the switchover, as the
# engine measures and journals them (`runbook status RUN --format json`: `outage.total_secs`,
# `freeze.total_secs`, every piece added up), next to the whole run (`started_at` to
# `finished_at`). See docs/performance.md; the switchover's is benches/switchover_freeze.sh.
#
#   benches/outage_runbooks.sh [ROUNDS]     (default 3; needs fis-gtm, sshd; ~2 min a round)
#
# Each round builds fresh 2-host labs (sandboxed sshd on loopback, real GT.M V7.0-005):
# - migrate-existing: A holds 10,000 nodes and runs alone; the runbook turns replication on and
#   builds B from A's backup (no application: the outage is the runbook's own actions).
# - rolling-upgrade (replica_first, `upgrade_cmd=true`): A→B replicating; B is upgraded, one
#   switchover, A is upgraded. The run stops at the manual hold (exit 3); the bench approves it
#   at once and applies again (the time the operator takes is in no piece: nothing runs).
# UPGRADE_RUNBOOK=FILE runs another rolling-upgrade (the comparison: `git show
# 251d87f:runbooks/gtm/rolling-upgrade.yaml >/tmp/before.yaml`, the order before issue 11's
# reordering, which marks no freeze).
# RUNBOOK=path/to/runbook picks the binary (default: target/release/runbook if built, else
# target/debug/runbook).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
runbook=${RUNBOOK:-}
if [ -z "$runbook" ]; then
  if [ -x target/release/runbook ]; then runbook=$PWD/target/release/runbook; else runbook=$PWD/target/debug/runbook; fi
fi
gtm=/usr/lib/x86_64-linux-gnu/fis-gtm/V7.0-005_x86_64
work=$(mktemp -d /tmp/outage-runbooks.XXXXXX)
labs=()
upper() { printf '%s' "$1" | tr a-z A-Z; }
mupip_in() { # mupip_in LAB HOST ARGS...
  local d=$1/lab/hosts/$2/root/gtm h=$2; shift 2
  (cd "$d" 2>/dev/null && gtm_dist=$gtm gtm_repl_instname=$(upper "$h") gtm_repl_instance=$d/gtm.repl \
    gtmgbldir=$d/gtm.gld gtm_log=$d/log gtm_tmp=$d/tmp "$gtm/mupip" "$@")
}
cleanup() {
  for d in "${labs[@]}"; do
    for h in b a; do
      mupip_in "$d" "$h" replicate -receiver -shutdown -timeout=0 >/dev/null 2>&1 || true
      mupip_in "$d" "$h" replicate -source -shutdown -timeout=0 >/dev/null 2>&1 || true
      mupip_in "$d" "$h" rundown -region "*" >/dev/null 2>&1 || true
    done
    "$runbook" lab down --dir "$d/lab" --purge >/dev/null 2>&1 || true
  done
  if [ "${RUNBOOK_BENCH_KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

new_lab() { # new_lab DIR
  labs+=("$1")
  "$runbook" lab up --dir "$1/lab" -n 2 --role a=originating --role b=replicating \
    --var 'gtm_dir={root}/gtm' --var 'gtm_instance={NAME}' --var 'repl_port={free_port}' >/dev/null
}

# apply_to_end DIR RUNBOOK ARGS...: applies, approving each manual step, until the run ends;
# prints "OUTAGE FREEZE RUN STATUS" from `status --format json`.
apply_to_end() {
  local d=$1 rb=$2 code step id=""; shift 2
  while :; do
    code=0
    "$runbook" apply "$rb" -i "$d/lab/inventory.yaml" --state "$d/state" --format json "$@" >"$d/events.json" 2>"$d/stderr" || code=$?
    [ -n "$id" ] || id=$(head -n 1 "$d/events.json" | sed -n 's/.*"run_id":"\([^"]*\)".*/\1/p')
    [ "$code" = 3 ] || break
    step=$(grep '"event":"awaiting_approval"' "$d/events.json" | head -n 1 | sed -n 's/.*"step":"\([^"]*\)".*/\1/p')
    "$runbook" approve "$id" "$step" --by bench --reason "updates held" --state "$d/state" >/dev/null
  done
  "$runbook" status "$id" --format json --state "$d/state" | python3 -c '
import json, sys, datetime
s = json.load(sys.stdin)
t = lambda k: datetime.datetime.fromisoformat(s[k][:26].rstrip("Z"))
o = (s.get("outage") or {}).get("total_secs")
f = (s.get("freeze") or {}).get("total_secs")
print("%s %s %.2f %s" % ("%.2f" % o if o is not None else "none", "%.2f" % f if f is not None else "none",
      (t("finished_at") - t("started_at")).total_seconds(), s["state"]))'
}

seed_existing='apiVersion: runbook/v1
kind: Runbook
metadata: {name: existing, version: 1.0.0}
roles: {originating: 1}
steps:
  - {id: db, module: gtm.database_create, on: originating, with: {dir: "{{ vars.gtm_dir }}", instance: "{{ vars.gtm_instance }}"}}
  - {id: data, module: gtm.mumps, on: originating, with: {dir: "{{ vars.gtm_dir }}", instance: "{{ vars.gtm_instance }}", code: "for i=1:1:10000 set ^data(i)=\"row \"_i"}}
'

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "runbook: $runbook; $rounds rounds" >&2
: >"$work/migrate.txt"; : >"$work/upgrade.txt"
for r in $(seq 1 "$rounds"); do
  d=$work/m$r; mkdir -p "$d"; new_lab "$d"
  printf '%s' "$seed_existing" >"$d/existing.yaml"
  "$runbook" apply "$d/existing.yaml" -i "$d/lab/inventory.yaml" --state "$d/seed-state" --format plain >/dev/null 2>&1
  m=$(apply_to_end "$d" runbooks/gtm/migrate-existing.yaml)
  echo "$m" >>"$work/migrate.txt"
  d=$work/u$r; mkdir -p "$d"; new_lab "$d"
  "$runbook" apply runbooks/gtm/new-mirror.yaml -i "$d/lab/inventory.yaml" --state "$d/seed-state" --format plain >/dev/null 2>&1
  u=$(apply_to_end "$d" "${UPGRADE_RUNBOOK:-runbooks/gtm/rolling-upgrade.yaml}" -e order=replica_first -e upgrade_cmd=true \
    -e source_shutdown_timeout=10s -e server_shutdown_timeout=5s)
  echo "$u" >>"$work/upgrade.txt"
  printf 'round %d: migrate-existing outage %ss (freeze %s, run %ss, %s); rolling-upgrade outage %ss, freeze %ss (run %ss, %s); load %s\n' \
    "$r" $m $u "$(cut -d' ' -f1-3 /proc/loadavg)"
done
printf 'median of %d: migrate-existing outage %ss of a %ss run; rolling-upgrade outage %ss, freeze %ss, of a %ss run\n' "$rounds" \
  "$(awk '{ print $1 }' "$work/migrate.txt" | median)" "$(awk '{ print $3 }' "$work/migrate.txt" | median)" \
  "$(awk '{ print $1 }' "$work/upgrade.txt" | median)" "$(awk '{ print $2 }' "$work/upgrade.txt" | median)" \
  "$(awk '{ print $3 }' "$work/upgrade.txt" | median)"
