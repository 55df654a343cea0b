#!/usr/bin/env bash
# A small fleet on one machine (README "A fleet on one machine"): the scheduler daemon, three host
# daemons with one simulated GPU each, three basic-tier training jobs that fill the fleet, then a
# premium job that preempts one of them.  The preempted job is checkpointed, resumes on another
# host when a device frees up, and its final digest equals an uninterrupted run's.
#
#     make demo-fleet            (or: examples/fleet-demo.sh, after `make build`)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=$REPO/.venv/bin
PY=$BIN/python
DIR=${FLEET_DIR:-$(mktemp -d /tmp/singularity-fleet.XXXXXX)}
PORT=${FLEET_PORT:-8470}
export SINGULARITY_RUNTIME_DIR=$DIR/run        # job sockets: one path on every "host"
export SINGULARITY_SCHEDULER=http://127.0.0.1:$PORT
export SINGULARITY_TOKEN=$($PY -c "import secrets; print(secrets.token_hex(16))")
echo "$SINGULARITY_TOKEN" > "$DIR/token"
chmod 600 "$DIR/token"

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "fleet.toml: three hosts, one simulated GPU each"
for h in h0 h1 h2; do printf '[[hosts]]\nname = "%s"\ncluster = "c0"\ndevices = "sim:1"\n\n' $h; done > "$DIR/fleet.toml"
cat "$DIR/fleet.toml"

say "the scheduler daemon (state in $DIR/data/scheduler.db)"
$BIN/singularity-scheduler serve --fleet "$DIR/fleet.toml" --data-dir "$DIR/data" --listen 127.0.0.1:$PORT \
    --token-file "$DIR/token" --quantum 2 > "$DIR/scheduler.log" 2>&1 &
pids+=($!)
say "three host daemons"
for i in 0 1 2; do
    $BIN/singproxy serve --name h$i --data-dir "$DIR/data" --devices sim:1 --state-dir "$DIR/h$i" \
        --listen 127.0.0.1:$((PORT + 1 + i)) --token-file "$DIR/token" --scheduler "$SINGULARITY_SCHEDULER" \
        > "$DIR/h$i.log" 2>&1 &
    pids+=($!)
done
for i in 0 1 2; do
    until $BIN/singproxy status --state-dir "$DIR/h$i" >/dev/null 2>&1; do sleep 0.2; done
done
$BIN/singproxy status --state-dir "$DIR/h0"

state() { $BIN/singularity jobs --json | $PY -c "import json,sys; print({j['name']: j['state'] for j in json.load(sys.stdin)}.get('$1', '-'))"; }
wait_for() {  # NAME STATE...
    local name=$1; shift
    until [[ " $* " == *" $(state "$name") "* ]]; do sleep 0.5; done
}

TRAIN=("$PY" "$REPO/examples/train.py" --step-delay 0.05)
say "three basic-tier jobs fill the fleet"
for i in 0 1 2; do $BIN/singularity submit --name basic$i --tier basic -- "${TRAIN[@]}" --steps 300; done
for i in 0 1 2; do wait_for basic$i running; done
$BIN/singularity jobs
sleep 3

say "a premium job arrives: the fleet is full, so a basic job is checkpointed to make room"
$BIN/singularity submit --name premium --tier premium -- "${TRAIN[@]}" --steps 400
wait_for premium running succeeded
$BIN/singularity jobs

say "everything runs to its end (the preempted job resumes on the first device that frees up)"
for j in basic0 basic1 basic2 premium; do
    wait_for $j succeeded failed cancelled
done
$BIN/singularity jobs

say "each job's digest against an uninterrupted run of the same program"
ok=1
for j in basic0 basic1 basic2 premium; do
    steps=$([[ $j == premium ]] && echo 400 || echo 300)
    got=$($BIN/singularity logs $j | grep '^digest')
    ref=$($BIN/singularity sim -- "$PY" "$REPO/examples/train.py" --steps $steps 2>/dev/null | grep '^digest')
    hosts=$($BIN/singularity jobs --json | $PY -c "import json,sys; print('→'.join(next(j['hosts'] for j in json.load(sys.stdin) if j['name']=='$j')))")
    if [[ "$got" == "$ref" ]]; then echo "$j: ran on $hosts, $got (same as uninterrupted)"; else echo "$j: $got ≠ $ref"; ok=0; fi
done
echo
echo "events: curl -s -H 'Authorization: Bearer \$(cat $DIR/token)' $SINGULARITY_SCHEDULER/v1/events"
echo "logs and images: $DIR/data"
[[ $ok == 1 ]]
