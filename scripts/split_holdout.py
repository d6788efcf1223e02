#!/usr/bin/env python3
"""Split a labelled CSV into a training part and a holdout, stratified by the outcome column.

    scripts/split_holdout.py Leads.csv Converted 0.3 /tmp/xed_train.csv /tmp/xed_holdout.csv [seed]

Used for the backtests in docs/evaluation.md; standard library only.
"""
import csv
import random
import sys

src, target, share, train_out, holdout_out = sys.argv[1:6]
seed = int(sys.argv[6]) if len(sys.argv) > 6 else 42
with open(src, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f)
    header = next(reader)
    rows = list(reader)
column = header.index(target)
rng = random.Random(seed)
by_class = {}
for i, row in enumerate(rows):
    by_class.setdefault(row[column], []).append(i)
holdout = set()
for members in by_class.values():
    rng.shuffle(members)
    holdout.update(members[: round(len(members) * float(share))])
for path, keep in ((train_out, lambda i: i not in holdout), (holdout_out, lambda i: i in holdout)):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(row for i, row in enumerate(rows) if keep(i))
print(f"{len(rows) - len(holdout)} training rows -> {train_out}, {len(holdout)} holdout rows -> {holdout_out}")
