#!/usr/bin/env python3
"""scikit-learn reference for the evaluation benchmark (BENCHMARKS.md, "Evaluation").

    python3 benches/evaluate_sklearn.py SCORED.csv LEADS.csv [RUNS]

Reads the probabilities of a `leadscore score` CSV and the outcomes of the labelled CSV, joins
them by lead id (not timed), then times roc_auc_score + brier_score_loss + calibration_curve
on the same million leads, and prints each run and the median.
"""
import csv
import statistics
import sys
import time

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, roc_auc_score

scored, leads = sys.argv[1:3]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 7
with open(leads, newline="") as f:
    outcome = {row["lead_id"]: row["converted"] == "1" for row in csv.DictReader(f)}
p, y = [], []
with open(scored, newline="") as f:
    for row in csv.DictReader(f):
        p.append(float(row["probability"]))
        y.append(outcome[row["lead_id"]])
p = np.array(p)
y = np.array(y, dtype=np.int8)
print(f"{len(p)} leads, {int(y.sum())} won")
times = []
for _ in range(runs):
    start = time.perf_counter()
    auc = roc_auc_score(y, p)
    brier = brier_score_loss(y, p)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    times.append(time.perf_counter() - start)
print(f"AUC {auc:.6f}  Brier {brier:.6f}  calibration bins {len(prob_true)}")
print("runs (s): " + " ".join(f"{t:.3f}" for t in times))
print(f"median {statistics.median(times):.3f} s")
