"""What a Python team would run instead of `leadscore train`: the reference for BENCHMARKS.md.

pandas read, impute + missing indicator + standardise numbers, one-hot categories, stratified
20% holdout, fit, holdout AUC, refit on all rows, save. scikit-learn's LogisticRegression
(lbfgs), single thread. Prints a JSON line of timings (seconds).

    python3 benches/train_reference.py leads.csv model.pkl
"""
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import json  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import pandas as pd  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

NUMERIC = ["employees", "web_visits", "emails_opened", "days_since_last_touch"]
CATEGORICAL = ["source", "industry", "region", "company_size", "rep", "demo_requested"]


def main(path, out):
    t0 = time.perf_counter()
    df = pd.read_csv(path)
    y = df["converted"].to_numpy()
    x = df[NUMERIC + CATEGORICAL]
    t_read = time.perf_counter()
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=42
    )
    encoded_train = pre.fit_transform(x_train)
    encoded_test = pre.transform(x_test)
    t_encode = time.perf_counter()
    model = LogisticRegression(max_iter=1000)
    model.fit(encoded_train, y_train)
    t_fit = time.perf_counter()
    auc = roc_auc_score(y_test, model.predict_proba(encoded_test)[:, 1])
    full = make_pipeline(pre, LogisticRegression(max_iter=1000))
    t_refit_start = time.perf_counter()
    full.fit(x, y)
    t_refit = time.perf_counter()
    with open(out, "wb") as f:
        pickle.dump(full, f)
    t_end = time.perf_counter()
    print(
        json.dumps(
            {
                "read": t_read - t0,
                "encode": t_encode - t_read,
                "holdout_fit": t_fit - t_encode,
                "refit_with_encoding": t_refit - t_refit_start,
                "total": t_end - t0,
                "features": encoded_train.shape[1],
                "holdout_auc": auc,
                "iterations": int(model.n_iter_[0]),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
