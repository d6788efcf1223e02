#!/usr/bin/env bash
# Soak test: sustained load on the server while the model in service changes every minute.
#
# Trains two versions of a model on DATA into a scratch registry, serves it, runs
# `leadscore-bench load` at concurrency 128 for DURATION seconds, promotes the other version
# every RELOAD seconds (`leadscore models promote`, as a nightly job would), samples the server's
# resident memory every 10 s, and at the end prints the failed calls (bench errors and the
# server's non-OK status counts), the reloads the server made, and the start/end/peak RSS.
# Exits 1 when a call failed, a reload failed, or fewer reloads happened than promotions.
#
# Usage:
#   scripts/soak.sh DATA TARGET_COLUMN ID_COLUMN [DURATION=600] [RELOAD=60] [-- TRAIN_ARGS...]
# Example (X Education, the figures in RELIABILITY.md):
#   cargo build --release
#   scripts/soak.sh ../shared/data/x_education/Leads.csv Converted "Prospect ID" 600 60 -- \
#     --na Select --drop "Tags,Lead Quality,Lead Profile,Last Activity,Last Notable Activity,Lead Number"
# Environment: LEADSCORE (binary, default target/release/leadscore), LEADSCORE_BENCH (load
# generator, default target/release/leadscore-bench), PORT (default 50091), SERVER_CPU /
# CLIENT_CPU (taskset cores, default 0 and 1), WORK (scratch directory).
set -euo pipefail

if [[ $# -lt 3 ]]; then
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
DATA=$1 TARGET=$2 ID=$3
shift 3
DURATION=600 RELOAD=60
if [[ $# -gt 0 && $1 != -- ]]; then DURATION=$1; shift; fi
if [[ $# -gt 0 && $1 != -- ]]; then RELOAD=$1; shift; fi
if [[ $# -gt 0 && $1 == -- ]]; then shift; fi
TRAIN_ARGS=("$@")

B=${LEADSCORE:-target/release/leadscore}
BB=${LEADSCORE_BENCH:-target/release/leadscore-bench}
PORT=${PORT:-50091}
METRICS_PORT=$((PORT + 1))
WORK=${WORK:-$(mktemp -d /tmp/leadscore-soak.XXXXXX)}
MODELS=$WORK/models
mkdir -p "$MODELS"
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# Two versions that differ (another holdout seed), the first in service.
log "training two versions into $MODELS"
"$B" train --data "$DATA" --target "$TARGET" --id "$ID" --models "$MODELS" --promote always \
    --seed 1 "${TRAIN_ARGS[@]}" > "$WORK/train-1.txt"
sleep 1.1 # version names have one-second resolution
"$B" train --data "$DATA" --target "$TARGET" --id "$ID" --models "$MODELS" --promote never \
    --seed 2 "${TRAIN_ARGS[@]}" > "$WORK/train-2.txt"
mapfile -t VERSIONS < <(find "$MODELS" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
[[ ${#VERSIONS[@]} -eq 2 ]] || { echo "expected 2 versions, found ${VERSIONS[*]}" >&2; exit 1; }
log "versions: ${VERSIONS[*]}; in service: $(cat "$MODELS/CURRENT")"

taskset -c "${SERVER_CPU:-0}" "$B" serve --models "$MODELS" --addr "127.0.0.1:$PORT" \
    --metrics-addr "127.0.0.1:$METRICS_PORT" --reload-interval 1 2> "$WORK/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -sf "127.0.0.1:$METRICS_PORT/metrics" > /dev/null && break
    sleep 0.1
done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status"; }
metric() { # sum of a metric's samples whose line matches $1
    curl -sf "127.0.0.1:$METRICS_PORT/metrics" | awk -v m="$1" '$0 ~ m && $1 !~ /^#/ {s += $NF} END {print s + 0}'
}

taskset -c "${CLIENT_CPU:-1}" "$BB" load --target "http://127.0.0.1:$PORT" --data "$DATA" \
    --id "$ID" --exclude "$TARGET" --concurrency 128 --duration "$DURATION" --warmup 0 \
    --rounds 1 > "$WORK/bench.txt" 2>&1 &
BENCH=$!
START=$SECONDS
RSS_START=$(rss)
echo "seconds rss_kb" > "$WORK/rss.txt"
PROMOTIONS=0 NEXT_RELOAD=$RELOAD NEXT_SAMPLE=0
while kill -0 $BENCH 2> /dev/null; do
    ELAPSED=$((SECONDS - START))
    if ((ELAPSED >= NEXT_SAMPLE)); then
        echo "$ELAPSED $(rss)" >> "$WORK/rss.txt"
        NEXT_SAMPLE=$((NEXT_SAMPLE + 10))
    fi
    if ((ELAPSED >= NEXT_RELOAD && ELAPSED < DURATION)); then
        NEXT=${VERSIONS[$(((PROMOTIONS + 1) % 2))]}
        "$B" models promote "$NEXT" --models "$MODELS" > /dev/null 2>&1
        PROMOTIONS=$((PROMOTIONS + 1))
        log "promoted $NEXT (promotion $PROMOTIONS), server RSS $(rss) kB"
        NEXT_RELOAD=$((NEXT_RELOAD + RELOAD))
    fi
    sleep 0.5
done
wait $BENCH || { cat "$WORK/bench.txt"; exit 1; }
RSS_END=$(rss)
RSS_PEAK=$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER/status")
RELOADS_OK=$(metric 'leadscore_model_reloads_total\\{result="ok"')
RELOADS_FAILED=$(metric 'leadscore_model_reloads_total\\{result="failed"')
SERVER_ERRORS=$(metric '^leadscore_grpc_errors_total')
SERVER_CALLS=$(metric '^leadscore_grpc_requests_total')
BENCH_ERRORS=$(awk '$1 == "median" {print $(NF - 1)}' "$WORK/bench.txt")
kill -TERM $SERVER
wait $SERVER || true
trap - EXIT

cat "$WORK/bench.txt"
echo
echo "duration ${DURATION}s, concurrency 128, promotions $PROMOTIONS (every ${RELOAD}s)"
echo "server: calls $SERVER_CALLS, non-OK statuses $SERVER_ERRORS, reloads ok $RELOADS_OK (incl. the first load), reloads failed $RELOADS_FAILED"
echo "bench errors: $BENCH_ERRORS"
# Start-up memory grows until the connection's buffers and the allocator's arenas are warm;
# "flat" means the first minute's level holds to the end.
RSS_MINUTE=$(awk 'NR > 1 && $1 >= 60 {print $2; exit}' "$WORK/rss.txt")
RSS_MAX=$(awk 'NR > 1 && $2 > m {m = $2} END {print m}' "$WORK/rss.txt")
echo "server RSS: start $RSS_START kB, at 60 s ${RSS_MINUTE:-n/a} kB, end $RSS_END kB, largest sample $RSS_MAX kB, peak (VmHWM) $RSS_PEAK kB; samples every 10 s in $WORK/rss.txt"
if [[ $SERVER_ERRORS != 0 || $BENCH_ERRORS != 0 || $RELOADS_FAILED != 0 ]] ||
    ((RELOADS_OK < PROMOTIONS + 1)); then
    echo "SOAK FAILED"
    exit 1
fi
echo "SOAK PASSED"
