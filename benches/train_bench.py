"""Benchmark: `leadscore train` end to end against scikit-learn on the same synthetic leads.

For each size and generator, writes the data, then alternates runs of `leadscore train` and
benches/train_reference.py (so both see the same machine load), and prints medians, the
ratio leadscore / scikit-learn, peak resident memory and holdout AUC of each.

Generators: `sample` is `leadscore sample` (8 reps, 36 encoded columns); `wide` has the same
columns with more levels (30 reps, 12 sources, 20 industries, 10 regions: 84 encoded columns),
drawn here. With several `--bin`s (e.g. builds before and after a change), each run alternates
all of them and the reference; with `--shapes off auto`, each binary runs once per mode
(`train --shapes MODE`), alternated in the same way.

    cargo build --release && python3 benches/train_bench.py --rows 100000 1000000 --runs 3
    python3 benches/train_bench.py --rows 1000000 --runs 3 --shapes off auto
"""
import argparse
import csv
import json
import math
import os
import random
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


def write_wide(path, rows, seed):
    """Leads like `leadscore sample`'s (same columns, missing values and closure rate) with more
    category levels, each with its own effect."""
    rng = random.Random(seed)
    levels = {
        "source": 12, "industry": 20, "region": 10, "company_size": 4, "rep": 30,
    }
    names = {
        "source": lambda i: f"Source {i + 1}", "industry": lambda i: f"Industry {i + 1}",
        "region": lambda i: f"Region {i + 1}", "company_size": lambda i: ["Small", "Medium", "Large", "Enterprise"][i],
        "rep": lambda i: f"Rep {i + 1:02d}",
    }
    effects = {c: [rng.gauss(0, 0.3) for _ in range(k)] for c, k in levels.items()}
    weights = {c: [rng.uniform(0.5, 2.0) for _ in range(k)] for c, k in levels.items()}
    leads, logits = [], []
    for _ in range(rows):
        lead = {c: rng.choices(range(k), weights[c])[0] for c, k in levels.items()}
        lead["employees"] = None if rng.random() < 0.06 else max(1, round(math.exp(rng.gauss(4.5, 1.2))))
        lead["web_visits"] = None if rng.random() < 0.03 else min(int(rng.expovariate(1 / 4)), 60)
        lead["emails_opened"] = min(int(rng.expovariate(1 / 3)), 40)
        lead["days_since_last_touch"] = min(int(rng.expovariate(1 / 20)), 365)
        lead["demo_requested"] = rng.random() < 0.2
        logit = sum(effects[c][lead[c]] for c in levels) + 1.3 * lead["demo_requested"]
        logit += 0.12 * (lead["web_visits"] or 0) + 0.08 * lead["emails_opened"]
        logit -= 0.04 * lead["days_since_last_touch"]
        leads.append(lead)
        logits.append(logit)
    # The intercept that gives a 13% closure rate, by bisection.
    lo, hi = -20.0, 20.0
    for _ in range(50):
        mid = (lo + hi) / 2
        rate = sum(1 / (1 + math.exp(-(mid + z))) for z in logits[::max(1, rows // 20000)])
        lo, hi = (mid, hi) if rate / len(logits[::max(1, rows // 20000)]) < 0.13 else (lo, mid)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["lead_id", "created_at", *levels, "employees", "web_visits", "emails_opened",
                      "days_since_last_touch", "demo_requested", "converted"])
        for i, (lead, z) in enumerate(zip(leads, logits)):
            won = rng.random() < 1 / (1 + math.exp(-(lo + z)))
            industry = "" if rng.random() < 0.04 else names["industry"](lead["industry"])
            out.writerow([f"L{i + 1:07d}", f"2025-{1 + i * 12 // rows:02d}-01",
                          names["source"](lead["source"]), industry, names["region"](lead["region"]),
                          names["company_size"](lead["company_size"]), names["rep"](lead["rep"]),
                          "" if lead["employees"] is None else lead["employees"],
                          "NA" if lead["web_visits"] is None else lead["web_visits"],
                          lead["emails_opened"], lead["days_since_last_touch"],
                          "yes" if lead["demo_requested"] else "no", int(won)])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--generators", nargs="+", choices=["sample", "wide"], default=["sample"])
    parser.add_argument("--bin", nargs="+", default=[BIN], help="leadscore binaries to compare")
    parser.add_argument("--shapes", nargs="+", choices=["off", "auto"],
                        help="run each binary with train --shapes MODE, per mode (default: without the flag)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        for generator in args.generators:
            for rows in args.rows:
                bench(args, work, generator, rows)


def bench(args, work, generator, rows):
    data = os.path.join(work, f"leads-{generator}-{rows}.csv")
    if generator == "sample":
        subprocess.run([args.bin[0], "sample", "--rows", str(rows), "--seed", "1", "--out", data],
                       check=True, stderr=subprocess.DEVNULL)
    else:
        write_wide(data, rows, seed=1)
    variants = [(b, mode) for b in args.bin for mode in (args.shapes or [None])]
    ours = {v: [] for v in variants}
    ours_cpu = {v: [] for v in variants}
    theirs, theirs_cpu = [], []
    for run in range(args.runs):
        for i, (b, mode) in enumerate(variants):
            models = os.path.join(work, f"models-{generator}-{rows}-{run}-{i}")
            flags = ["--shapes", mode] if mode else []
            wall, rss, out, cpu = timed([b, "train", "--data", data, "--target", "converted",
                                         "--id", "lead_id", "--models", models, "--json", "--quiet",
                                         *flags])
            ours[(b, mode)].append((wall, rss, json.loads(out)))
            ours_cpu[(b, mode)].append(cpu)
        wall, rss, out, cpu = timed([sys.executable, os.path.join(HERE, "train_reference.py"),
                                     data, os.path.join(work, "model.pkl")])
        theirs.append((wall, rss, json.loads(out)))
        theirs_cpu.append(cpu)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    theirs_wall = med([w for w, _, _ in theirs])
    fit_theirs = med([r["holdout_fit"] for _, _, r in theirs])
    print(f"== {rows} leads ({generator}), {args.runs} runs each (medians)")
    for v in variants:
        b, mode = v
        runs = ours[v]
        ours_wall = med([w for w, _, _ in runs])
        t = [s["timings_seconds"] for _, _, s in runs]
        fit_ours = med([x["holdout_fit"] for x in t])
        name = "leadscore train" if len(args.bin) == 1 else b
        if mode:
            name += f" --shapes {mode}"
        shapes = f"shapes {med([x['shapes'] for x in t]):.2f}  " if "shapes" in t[0] else ""
        print(f"{name:17} {ours_wall:7.2f} s wall  peak RSS {med([r for _, r, _ in runs]):7.0f} MiB  "
              f"holdout AUC {runs[0][2]['holdout']['metrics']['roc_auc']:.4f}  features {runs[0][2]['features']}")
        print(f"   stages: read {med([x['read'] for x in t]):.2f}  encode {med([x['encode'] for x in t]):.2f}  "
              f"{shapes}choose alpha {med([x['select_alpha'] for x in t]):.2f}  holdout fit {fit_ours:.2f}  "
              f"final fit {med([x['final_fit'] for x in t]):.2f}")
        print(f"   CPU time (user+sys) {med(ours_cpu[v]):.2f} s; ratio to scikit-learn: end to end "
              f"{ours_wall / theirs_wall:.2f}x wall, {med(ours_cpu[v]) / med(theirs_cpu):.2f}x CPU; "
              f"holdout fit {fit_ours / fit_theirs:.2f}x")
    print(f"scikit-learn      {theirs_wall:7.2f} s wall  peak RSS {med([r for _, r, _ in theirs]):7.0f} MiB  "
          f"holdout AUC {theirs[0][2]['holdout_auc']:.4f}  features {theirs[0][2]['features']}")
    print(f"   stages: read {med([r['read'] for _, _, r in theirs]):.2f}  encode {med([r['encode'] for _, _, r in theirs]):.2f}  "
          f"holdout fit {fit_theirs:.2f} ({theirs[0][2]['iterations']} lbfgs iterations)  "
          f"refit incl. encoding {med([r['refit_with_encoding'] for _, _, r in theirs]):.2f}")
    print(f"   CPU time (user+sys) {med(theirs_cpu):.2f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
