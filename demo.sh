#!/usr/bin/env bash
# The main job on an embedded default: a local lab of two sandboxed hosts (sshd on 127.x
# addresses, each with its own directory tree) running real GT.M. Installs what is missing
# (as .ci/install-packages does), builds runbook, then:
#   1. instance A exists and runs alone with 10,000 nodes;
#   2. runbooks/gtm/migrate-existing.yaml makes it replicate to a new B built from its backup,
#      inside an outage window that opens now;
#   3. runbooks/gtm/switchover.yaml makes B originating and A its replica;
#   4. a data check on both instances.
# Everything is torn down at the end (RUNBOOK_DEMO_KEEP=1 keeps the lab and its state).
set -euo pipefail
cd "$(dirname "$0")"
.ci/install-packages
cargo build --release --quiet -p runbook-engine
runbook=$PWD/target/release/runbook
dir=$(mktemp -d /tmp/runbook-demo.XXXXXX)
inventory=$dir/lab/inventory.yaml
state=$dir/state
gtm=/usr/lib/x86_64-linux-gnu/fis-gtm/V7.0-005_x86_64

teardown() {
  if [ "${RUNBOOK_DEMO_KEEP:-0}" = 1 ]; then
    echo "kept: lab and state in $dir (runbook lab down --dir $dir/lab --purge)"
    return
  fi
  "$runbook" apply runbooks/gtm/shutdown.yaml -i "$inventory" --state "$dir/teardown" --format plain >/dev/null 2>&1 || true
  "$runbook" lab down --dir "$dir/lab" --purge >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap teardown EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a lab of two hosts, a (originating) and b (replicating), with GT.M instance variables"
"$runbook" lab up --dir "$dir/lab" -n 2 --platform gtm

step "instance A exists and runs alone with 10,000 nodes"
"$runbook" apply tests/fixtures/gtm-existing-instance.yaml -i "$inventory" --state "$state"

window="$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ)/$(date -u -d '+2 hours' +%Y-%m-%dT%H:%M:%SZ)"
step "plan: migrate-existing against the outage window $window"
"$runbook" plan runbooks/gtm/migrate-existing.yaml -i "$inventory" --window "$window" | tail -n 4

step "apply: migrate-existing (B built from A's backup, replication A→B)"
"$runbook" apply runbooks/gtm/migrate-existing.yaml -i "$inventory" --state "$state" --window "$window"

m() { # m HOST CODE: run one line of M on HOST's instance, as its own environment has it
  local d=$dir/lab/hosts/$1/root/gtm
  (cd "$d" && gtm_dist=$gtm gtm_repl_instname=$(echo "$1" | tr a-z A-Z) gtm_repl_instance=$d/gtm.repl \
     gtmgbldir=$d/gtm.gld gtmroutines="$d $gtm/libgtmutil.so" "$gtm/mumps" -run %XCMD "$2")
}
mupip_on() { # mupip_on HOST ARGS...: mupip with HOST's instance environment
  local h=$1 d=$dir/lab/hosts/$1/root/gtm; shift
  (cd "$d" && gtm_dist=$gtm gtm_repl_instname=$(echo "$h" | tr a-z A-Z) gtm_repl_instance=$d/gtm.repl \
     gtmgbldir=$d/gtm.gld "$gtm/mupip" "$@")
}
step "the application writes 100 more nodes on A"
m a 'for i=10001:1:10100 set ^data(i)="row "_i'

step "apply: switchover (B becomes originating, A replicates from B)"
"$runbook" apply runbooks/gtm/switchover.yaml -i "$inventory" --state "$state"

step "the application, now on B, writes 100 more nodes"
m b 'for i=10101:1:10200 set ^data(i)="row "_i'
sleep 3

step "data check"
for h in a b; do
  n=$(m "$h" 'set c=0 xecute "for i=1:1:10200 set c=c+$data(^data(i))" write c')
  if mupip_on "$h" replicate -receiver -checkhealth >/dev/null 2>&1; then role="replicating (Receiver Server alive)"
  else role="originating (no Receiver Server)"; fi
  printf '  instance %s: %5s of 10200 nodes, ^data(10200) = "%s", %s\n' \
    "$(echo $h | tr a-z A-Z)" "$n" "$(m "$h" 'write $get(^data(10200))')" "$role"
done
"$runbook" status --state "$state" | head -n 4
