#!/usr/bin/env bash
# Benchmark: training on a sample of a large table (`train --max-rows`) against the fit on every
# row. Writes sample leads (2M and 10M, and 500k fresh leads from the same generator with another
# seed), then:
#   1. 2M leads fitted whole, and sampled to 1M: each model's stored holdout figures, and both
#      backtested on the same fresh leads (ROC AUC, mean predicted against realized);
#   2. 10M leads sampled to 1M, beside the full 2M fit: wall time and peak memory
#      (/usr/bin/time -v).
# Needs ~1.5 GB in $WORK (default: a temporary directory, removed at the end). The sizes can be
# set for a quick try: ROWS (2000000), BIG (10000000), FRESH (500000), CAP (1000000).
#
#     cargo build --release && bash benches/sampling.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${BIN:-$here/target/release/leadscore}"
work="${WORK:-$(mktemp -d)}"
trap 'rm -rf "$work"' EXIT
cd "$work"

rows="${ROWS:-2000000}" big="${BIG:-10000000}" fresh="${FRESH:-500000}" cap="${CAP:-1000000}"
"$bin" sample --rows "$rows" --seed 1 --out 2m.csv
"$bin" sample --rows "$big" --seed 2 --out 10m.csv
"$bin" sample --rows "$fresh" --seed 3 --out fresh.csv
ls -l 2m.csv 10m.csv fresh.csv

# Runs a training, printing wall time and peak memory from /usr/bin/time -v, and the summary
# lines that say what was read and measured.
train() {
    local name="$1"
    shift
    /usr/bin/time -v "$bin" train --target converted --id lead_id --promote always \
        --models "models-$name" "$@" >"$name.out" 2>"$name.err"
    echo "== $name: $*"
    grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$name.err"
    grep -E "^(data|sampled|holdout|           ROC|           log loss)" "$name.out" || true
    grep -E "^(model )" "$name.out"
}

train full-2m --data 2m.csv --max-rows 0
train sampled-2m --data 2m.csv --max-rows "$cap"
train sampled-10m --data 10m.csv --max-rows "$cap"

# The same fresh leads scored by each model: AUC and mean predicted against realized.
for name in full-2m sampled-2m sampled-10m; do
    echo "== $name on $fresh fresh leads"
    "$bin" evaluate --data fresh.csv --models "models-$name" --json - |
        python3 -c '
import json, sys
r = json.load(sys.stdin)
o = r["metrics"]
print("leads %d  realized %.5f  mean predicted %.5f  ROC AUC %.5f  log loss %.5f" % (o["leads"], o["realized_rate"], o["mean_predicted"], o["roc_auc"], o["log_loss"]))
'
done
