"""Benchmark: `leadscore train` end to end against scikit-learn on the same synthetic leads.

For each size, writes `leadscore sample` data, then alternates runs of `leadscore train` and
benches/train_reference.py (so both see the same machine load), and prints medians, the
ratio leadscore / scikit-learn, peak resident memory and holdout AUC of each.

    cargo build --release && python3 benches/train_bench.py --rows 100000 1000000 --runs 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, "..", "target", "release", "leadscore")


def timed(cmd):
    """Runs cmd; returns (wall seconds, peak RSS in MiB, stdout, CPU seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"failed ({status}): {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024, out, usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        for rows in args.rows:
            data = os.path.join(work, f"leads-{rows}.csv")
            subprocess.run([BIN, "sample", "--rows", str(rows), "--seed", "1", "--out", data],
                           check=True, stderr=subprocess.DEVNULL)
            ours, theirs, ours_cpu, theirs_cpu = [], [], [], []
            for run in range(args.runs):
                models = os.path.join(work, f"models-{rows}-{run}")
                wall, rss, out, cpu = timed([BIN, "train", "--data", data, "--target", "converted",
                                             "--id", "lead_id", "--models", models, "--json", "--quiet"])
                summary = json.loads(out)
                ours.append((wall, rss, summary))
                ours_cpu.append(cpu)
                wall, rss, out, cpu = timed([sys.executable, os.path.join(HERE, "train_reference.py"),
                                             data, os.path.join(work, "model.pkl")])
                theirs.append((wall, rss, json.loads(out)))
                theirs_cpu.append(cpu)
            med = lambda xs: statistics.median(xs)  # noqa: E731
            ours_wall = med([w for w, _, _ in ours])
            theirs_wall = med([w for w, _, _ in theirs])
            t = [s["timings_seconds"] for _, _, s in ours]
            fit_ours = med([x["holdout_fit"] for x in t])
            fit_theirs = med([r["holdout_fit"] for _, _, r in theirs])
            print(f"== {rows} leads, {args.runs} runs each (medians)")
            print(f"leadscore train   {ours_wall:7.2f} s wall  peak RSS {med([r for _, r, _ in ours]):7.0f} MiB  "
                  f"holdout AUC {ours[0][2]['holdout']['metrics']['roc_auc']:.4f}  features {ours[0][2]['features']}")
            print(f"   stages: read {med([x['read'] for x in t]):.2f}  encode {med([x['encode'] for x in t]):.2f}  "
                  f"choose alpha {med([x['select_alpha'] for x in t]):.2f}  holdout fit {fit_ours:.2f}  "
                  f"final fit {med([x['final_fit'] for x in t]):.2f}")
            print(f"scikit-learn      {theirs_wall:7.2f} s wall  peak RSS {med([r for _, r, _ in theirs]):7.0f} MiB  "
                  f"holdout AUC {theirs[0][2]['holdout_auc']:.4f}  features {theirs[0][2]['features']}")
            print(f"   stages: read {med([r['read'] for _, _, r in theirs]):.2f}  encode {med([r['encode'] for _, _, r in theirs]):.2f}  "
                  f"holdout fit {fit_theirs:.2f} ({theirs[0][2]['iterations']} lbfgs iterations)  "
                  f"refit incl. encoding {med([r['refit_with_encoding'] for _, _, r in theirs]):.2f}")
            print(f"CPU time (user+sys): leadscore {med(ours_cpu):.2f} s, scikit-learn {med(theirs_cpu):.2f} s")
            print(f"ratio leadscore / scikit-learn: end to end {ours_wall / theirs_wall:.2f}x wall, "
                  f"{med(ours_cpu) / med(theirs_cpu):.2f}x CPU; holdout fit {fit_ours / fit_theirs:.2f}x")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
