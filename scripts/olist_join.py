#!/usr/bin/env python3
"""Join Olist's marketing-qualified leads with its closed deals: one row per MQL, won = 1 when
its mql_id appears in the closed deals. Only the MQL columns are kept (closed-deal columns exist
only for won leads: post-outcome, never features). Optionally split by first_contact_date.
With --won-date, the deal's won_date is kept too (for `evaluate --funnel`, which measures the
days from first contact to won; never train on it: it is the outcome).

    scripts/olist_join.py [--won-date] MQLS.csv CLOSED_DEALS.csv OUT.csv [SPLIT_DATE TRAIN.csv LATER.csv]
"""
import csv
import sys

args = sys.argv[1:]
with_won_date = "--won-date" in args
args = [a for a in args if a != "--won-date"]
mqls, deals, out = args[0:3]
with open(deals, newline="", encoding="utf-8") as f:
    won = {row["mql_id"]: row["won_date"] for row in csv.DictReader(f)}
with open(mqls, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    header = reader.fieldnames + ["won"] + (["won_date"] if with_won_date else [])
    rows = []
    for row in reader:
        row["won"] = "1" if row["mql_id"] in won else "0"
        if with_won_date:
            row["won_date"] = won.get(row["mql_id"], "")
        rows.append(row)


def write(path, selected):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(selected)
    wins = sum(r["won"] == "1" for r in selected)
    print(f"{path}: {len(selected)} leads, {wins} won")


write(out, rows)
if len(args) > 3:
    split, train, later = args[3:6]
    write(train, [r for r in rows if r["first_contact_date"] < split])
    write(later, [r for r in rows if r["first_contact_date"] >= split])
