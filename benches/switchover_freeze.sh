#!/usr/bin/env bash
# The write freeze of a GT.M switchover, measured from outside: runbooks/gtm/switchover.yaml
# (over SSH, by the engine) side by side with a floor script that runs the seed's own commands
# directly on the instances (no SSH, no engine), after the same zero-backlog confirmation.
#
#   benches/switchover_freeze.sh [ROUNDS]      (default 3; needs fis-gtm, sshd; ~2 min a round)
#
# Each round builds two fresh A→B labs (2 sandboxed sshd hosts, real GT.M, the test set-up
# tests/suite/runbooks_gtm_switchover/setup.yaml), one for the runbook and one for the floor,
# and runs the same application on each: a writer that updates A (one mumps process per update,
# each success timestamped) until it is asked to hold, says it holds, then tries B until B
# accepts an update. The write freeze is the gap between the last update on A and the first on
# B; it does not depend on anything the engine reports. For the runbook, the writer is held by
# its `app_hold` step (the first action of the outage), and the outage is from the start of
# that action to the end of the last action of the last `outage: true` phase (JSON events,
# timestamped as they arrive); "run" is the run's own duration, preflight to verification
# (`duration_secs` of `run_finished`), "process" the whole `runbook apply` process. For the
# floor, the outage is the freeze. Prints one line per round and the medians.
#
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
work=$(mktemp -d /tmp/switchover-freeze.XXXXXX)
labs=()
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

now() { date +%s.%N; }
upper() { printf '%s' "$1" | tr a-z A-Z; }
env_in() { # env_in LAB HOST CMD...: CMD with HOST's instance environment, in its directory
  local d=$1/lab/hosts/$2/root/gtm h=$2; shift 2
  (cd "$d" && gtm_dist=$gtm gtm_repl_instname=$(upper "$h") gtm_repl_instance=$d/gtm.repl \
    gtmgbldir=$d/gtm.gld gtmroutines="$d $gtm/libgtmutil.so" gtm_log=$d/log gtm_tmp=$d/tmp "$@")
}
mupip_in() { local d=$1 h=$2; shift 2; env_in "$d" "$h" "$gtm/mupip" "$@"; }
m_in() { env_in "$1" "$2" "$gtm/mumps" -run %XCMD "$3"; }

# new_lab NAME: a lab with A→B replicating ^A(1..100); prints its directory.
new_lab() {
  local d=$work/$1
  mkdir -p "$d"
  labs+=("$d")
  "$runbook" lab up --dir "$d/lab" -n 2 --role a=originating --role b=replicating \
    --var 'gtm_dir={root}/gtm' --var 'gtm_instance={NAME}' --var 'repl_port={free_port}' >/dev/null
  "$runbook" apply tests/suite/runbooks_gtm_switchover/setup.yaml -i "$d/lab/inventory.yaml" \
    --state "$d/setup-state" --format plain >/dev/null 2>&1
}

# writer LAB LOG: the application (see the top of the file).
writer() {
  local d=$1 log=$2 i=0
  while [ ! -f "$d/hold" ]; do
    i=$((i + 1))
    if m_in "$d" a "set ^w($i)=$i" >/dev/null 2>&1; then echo "A $(now) $i" >>"$log"; fi
  done
  touch "$d/held"
  # Held until released (the runbook's app_resume, the floor's last command): a process that
  # probed B meanwhile would hold B's Journal Pool open, and the passive Source Server's
  # shutdown would leave it (then B cannot start as a root primary: %GTM-E-PRIMARYNOTROOT).
  while [ ! -f "$d/resume" ]; do sleep 0.01; done
  local tries=0
  while :; do
    i=$((i + 1))
    if m_in "$d" b "set ^w($i)=$i" >/dev/null 2>&1; then echo "B $(now) $i" >>"$log"; break; fi
    tries=$((tries + 1))
    if [ "$tries" -ge 300 ]; then echo "writer: B accepts no update" >&2; break; fi
    sleep 0.02
  done
}

# freeze LOG: first update on B − last update on A, in seconds.
freeze() { awk '$1 == "A" { a = $2 } $1 == "B" && !b { b = $2 } END { printf "%.2f", b - a }' "$1"; }

wait_writes() { # wait_writes LOG N
  while [ "$(grep -c '^A ' "$1" 2>/dev/null || true)" -lt "$2" ]; do sleep 0.1; done
}

# One round of the runbook: prints "FREEZE OUTAGE TOTAL".
run_runbook() {
  local d=$1 log=$1/writes.log
  : >"$log"
  writer "$d" "$log" &
  local wp=$!
  wait_writes "$log" 20
  local t0 t1
  t0=$(now)
  "$runbook" apply runbooks/gtm/switchover.yaml -i "$d/lab/inventory.yaml" --state "$d/state" --format json \
    -e drain_max_backlog=1000000 \
    -e "app_hold=touch '$d/hold'; while [ ! -f '$d/held' ]; do sleep 0.02; done" \
    -e "app_resume=touch '$d/resume'" |
    while IFS= read -r line; do printf '%s %s\n' "$(now)" "$line"; done >"$d/events.log"
  t1=$(now)
  wait "$wp"
  local status run
  status=$(sed -n 's/.*"event":"run_finished".*"status":"\([a-z_]*\)".*/\1/p' "$d/events.log" | tail -n 1)
  run=$(grep -o '"event":"run_finished","run_id":"[^"]*","status":"[a-z_]*","duration_secs":[0-9.]*' "$d/events.log" | sed 's/.*://' | tail -n 1)
  local outage
  outage=$(awk '
    /"event": *"action_started"/ && /"action": *"switch\.app-hold@a"/ && !s { s = $1 }
    /"event": *"action_finished"/ && /"action": *"switch\.(start-b-originating|app-resume-b)@b"/ { e = $1 }
    END { printf "%.2f", e - s }' "$d/events.log")
  # The engine's own figure (`freeze_ended`, from the start of `app-hold` to the end of
  # `app-resume-b`) and where it goes: each freeze action's `duration_secs`, and the gaps between
  # them (the engine's scheduling and journal commits) as the rest.
  local engine steps
  engine=$(grep -o '"event":"freeze_ended".*' "$d/events.log" | grep -o '"duration_secs":[0-9.]*' | head -n 1 | sed 's/.*://' | awk '{ printf "%.2f", $1 }')
  steps=$(awk -v f="${engine:-0}" '
    /"event":"action_finished"/ && /"action":"switch\.(app-hold@a|stop-source-a@a|stop-receiver-b@b|start-b-originating@b|app-resume-b@b)"/ {
      match($0, /"step":"[^"]*"/); st = substr($0, RSTART + 8, RLENGTH - 9)
      match($0, /"duration_secs":[0-9.]*/); du = substr($0, RSTART + 16, RLENGTH - 16)
      out = out sprintf("%s=%.2f,", st, du); sum += du
    }
    END { printf "%sengine=%.2f", out, f - sum }' "$d/events.log")
  echo "$steps" >>"$d/../steps.txt"
  printf '%s %s %.2f %.2f %s %s\n' "$(freeze "$log")" "$outage" "${run:-0}" "$(echo "$t1 - $t0" | bc)" "${status:-none}" "${engine:-none}"
}

# One round of the floor: the seed's commands on the instances, as an operator would type
# them, after the same confirmations. Prints "FREEZE".
run_floor() {
  local d=$1 log=$1/writes.log port_a addr_a
  port_a=$(awk '/^  "?a"?:/ { h = 1 } h && /repl_port/ { gsub(/[^0-9]/, "", $2); print $2; exit }' "$d/lab/inventory.yaml")
  addr_a=$(awk '/^  "?a"?:/ { h = 1 } h && /address:/ { print $2; exit }' "$d/lab/inventory.yaml")
  : >"$log"
  writer "$d" "$log" &
  local wp=$!
  wait_writes "$log" 20
  touch "$d/hold"
  while [ ! -f "$d/held" ]; do sleep 0.02; done
  # On A: the Source Server, with the zero-backlog confirmation.
  local out
  out=$(mupip_in "$d" a replicate -source -shutdown -timeout=30 -zerobacklog 2>&1)
  case $out in *-REPLBACKLOG,*) echo "floor: no zero backlog: $out" >&2; return 1 ;; *-REPL0BACKLOG,*) ;; *) echo "floor: $out" >&2; return 1 ;; esac
  # On B: 1. Receiver Server and Update Process (nothing left to wait for), 2. the passive
  # Source Server, 3. B starts as originating (seed: originating_start B A).
  mupip_in "$d" b replicate -receiver -shutdown -timeout=0 >/dev/null 2>&1
  mupip_in "$d" b replicate -source -shutdown -timeout=0 >/dev/null 2>&1
  if ! out=$(mupip_in "$d" b replicate -source -start -instsecondary=A "-secondary=$addr_a:$port_a" -buffsize=1048576 \
    "-log=$d/lab/hosts/b/root/gtm/log/source_B_A.log" -connectparams=5,500,1,30,1,60 2>&1); then
    echo "floor: B did not start as originating: $out" >&2
  fi
  touch "$d/resume"
  wait "$wp"
  freeze "$log"
  echo
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "runbook: $runbook; $rounds rounds" >&2
: >"$work/runbook.txt"; : >"$work/floor.txt"; : >"$work/steps.txt"
for r in $(seq 1 "$rounds"); do
  new_lab "rb$r"
  res=$(run_runbook "$work/rb$r")
  echo "$res" >>"$work/runbook.txt"
  new_lab "floor$r"
  fl=$(run_floor "$work/floor$r")
  echo "$fl" >>"$work/floor.txt"
  printf 'round %d: runbook freeze %ss, outage %ss, run %ss (process %ss, %s; engine-measured freeze %ss); floor freeze %ss; load %s\n' "$r" $res "$fl" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '  in the freeze: %s\n' "$(tail -n 1 "$work/steps.txt")"
done
f_rb=$(awk '{ print $1 }' "$work/runbook.txt" | median)
o_rb=$(awk '{ print $2 }' "$work/runbook.txt" | median)
t_rb=$(awk '$5 == "succeeded" { print $3 }' "$work/runbook.txt" | median)
failed=$(awk '$5 != "succeeded"' "$work/runbook.txt" | wc -l)
f_fl=$(median <"$work/floor.txt")
e_rb=$(awk '$6 != "none" { print $6 }' "$work/runbook.txt" | median)
printf 'median of %d: runbook write freeze %ss (engine-measured %ss, outage %ss, preflight to verification %ss over the runs that succeeded; %d did not); floor %ss; ratio %s\n' \
  "$rounds" "$f_rb" "$e_rb" "$o_rb" "$t_rb" "$failed" "$f_fl" "$(echo "scale=2; $f_rb / $f_fl" | bc)"
