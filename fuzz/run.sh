#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS seconds, then prints each one's final
# libFuzzer stats. Usage (from anywhere):
#
#   fuzz/run.sh [SECONDS] [TARGET...]      # default: 600 s each, every target
#
# Environment: PARALLEL=2 runs two targets at once (the machine has 2 cores; default 1),
# SANITIZER=none builds without AddressSanitizer (default: address).
#
# Runs are niced, read the committed seeds from seeds/<target>/ and grow a scratch corpus in
# corpus/<target>/ (not committed); a crash is written to artifacts/<target>/ and fails the
# script. Logs go to logs/<target>.log.
set -uo pipefail
cd "$(dirname "$0")"

seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(csv_schema score_request model_artifact)
fi
parallel=${PARALLEL:-1}
sanitizer=${SANITIZER:-address}

# cargo-fuzz passes nightly-only flags (-Zsanitizer, sanitizer coverage); this lets the stable
# toolchain accept them.
export RUSTC_BOOTSTRAP=1
build=()
[ ${#targets[@]} -eq 1 ] && build=("${targets[0]}")
cargo fuzz build --sanitizer "$sanitizer" "${build[@]}" || exit 1
mkdir -p logs

run_one() {
    local target=$1
    local dict=()
    [ -f "dicts/$target.dict" ] && dict=("-dict=dicts/$target.dict")
    mkdir -p "corpus/$target"
    nice -n 10 cargo fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 "${dict[@]}" \
        >"logs/$target.log" 2>&1
    echo $? >"logs/$target.status"
}

for target in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do
        wait -n
    done
    run_one "$target" &
done
wait

failed=0
for target in "${targets[@]}"; do
    status=$(cat "logs/$target.status")
    echo "== $target (exit $status, corpus/$target: $(ls "corpus/$target" | wc -l) files)"
    grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs|^stat::' "logs/$target.log"
    if [ "$status" -ne 0 ]; then
        failed=1
        grep -E 'panicked|ERROR: libFuzzer|ERROR: AddressSanitizer|Test unit written' "logs/$target.log"
    fi
done
exit $failed
