"""The classification metrics every result row carries per split (computed in `harness/metrics.py`);
named here so the results store can declare its columns without importing the training harness."""

CLASSIFICATION_METRICS = ("f1_buy", "auc_buy", "brier", "ece", "logloss")
