#!/usr/bin/env python3
"""Join Olist's marketing-qualified leads with its closed deals: one row per MQL, won = 1 when
its mql_id appears in the closed deals. Only the MQL columns are kept (closed-deal columns exist
only for won leads: post-outcome, never features). Optionally split by first_contact_date.

    scripts/olist_join.py MQLS.csv CLOSED_DEALS.csv OUT.csv [SPLIT_DATE TRAIN.csv LATER.csv]
"""
import csv
import sys

mqls, deals, out = sys.argv[1:4]
with open(deals, newline="", encoding="utf-8") as f:
    won = {row["mql_id"] for row in csv.DictReader(f)}
with open(mqls, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    header = reader.fieldnames + ["won"]
    rows = [dict(row, won="1" if row["mql_id"] in won else "0") for row in reader]


def write(path, selected):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(selected)
    wins = sum(r["won"] == "1" for r in selected)
    print(f"{path}: {len(selected)} leads, {wins} won")


write(out, rows)
if len(sys.argv) > 4:
    split, train, later = sys.argv[4:7]
    write(train, [r for r in rows if r["first_contact_date"] < split])
    write(later, [r for r in rows if r["first_contact_date"] >= split])
