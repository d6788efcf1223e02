#!/usr/bin/env bash
# Benchmark: training on a sample of a large table (`train --max-rows`) against the fit on every
# row. Writes sample leads (2M and 10M, and 500k fresh leads from the same generator with another
# seed), then:
#   1. 2M leads fitted whole, and sampled to 1M: each model's stored holdout figures, and both
#      backtested on the same fresh leads (ROC AUC, mean predicted against realized);
#   2. 10M leads sampled to 1M, beside the full 2M fit: wall time and peak memory
#      (/usr/bin/time -v).
# Needs ~1.5 GB in $WORK (default: a temporary directory, removed at the end).
#
#     cargo build --release && bash benches/sampling.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${BIN:-$here/target/release/leadscore}"
work="${WORK:-$(mktemp -d)}"
trap 'rm -rf "$work"' EXIT
cd "$work"

"$bin" sample --rows 2000000 --seed 1 --out 2m.csv
"$bin" sample --rows 10000000 --seed 2 --out 10m.csv
"$bin" sample --rows 500000 --seed 3 --out fresh.csv
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
train sampled-2m --data 2m.csv --max-rows 1000000
train sampled-10m --data 10m.csv --max-rows 1000000

# The same fresh leads scored by each model: AUC and mean predicted against realized.
for name in full-2m sampled-2m sampled-10m; do
    echo "== $name on 500k fresh leads"
    "$bin" evaluate --data fresh.csv --models "models-$name" --json - |
        python3 -c '
import json, sys
r = json.load(sys.stdin)
o = r["metrics"]
print("leads %d  realized %.5f  mean predicted %.5f  ROC AUC %.5f  log loss %.5f" % (o["leads"], o["realized_rate"], o["mean_predicted"], o["roc_auc"], o["log_loss"]))
'
done
