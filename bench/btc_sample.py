"""What the benches share: the default config's plan and the bundled BTC sample's largest fold, and the
quick mode's tiny inputs.

Every bench takes `--quick`: the same code path on inputs small enough to finish in seconds (one synthetic
crypto, one short fold, small models), so the test suite runs each bench (`test_benches.py`) and a bench
cannot rot unnoticed. Its figures mean nothing; the figures come from the full mode.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.sweep_plan import SweepPlan

QUICK_HELP = "tiny inputs that run in seconds, to check the bench runs (its figures mean nothing)"

# One synthetic crypto, one fold of 90 + 20 + 20 days, one small model and one cost level.
QUICK_CONFIG: dict[str, Any] = {
    "name": "benchquick",
    "timeframe": "1h",
    "universe": {"SYNA": {"kind": "synthetic"}},
    "data": {"synthetic": {"seed": 3, "start": "2021-01-01T00:00:00", "n_bars": 24 * 140}},
    "features": {"windows": [6, 24]},
    "labels": {"horizon_bars": 12, "take_profit_atr": 2.0, "stop_loss_atr": 1.0, "atr_window": 12},
    "folds": {"train": "90d", "validation": "20d", "test": "20d", "max_folds": 1},
    "models": {"xgboost": {}},
    "costs_bps": [10],
    "backtest": {"entry_threshold": 0.4, "slippage_bps": 1.0},
    "baselines": {"random_seeds": 8, "random_entry_prob": 0.05},
}

# Small models for quick mode, set as an operator may set them (the environment wins over ftf_config).
QUICK_PARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 15, "max_depth": 3},
    "lightgbm": {"n_estimators": 15, "num_leaves": 7},
    "catboost": {"iterations": 15, "depth": 3},
    "logreg": {"max_iter": 200},
}
QUICK_RANGES: dict[str, dict[str, tuple[Any, Any, str]]] = {
    "xgboost": {"n_estimators": (10, 30, "linear"), "max_depth": (2, 4, "linear")},
    "lightgbm": {"n_estimators": (10, 30, "linear"), "num_leaves": (3, 15, "log")},
    "catboost": {"iterations": (10, 30, "linear"), "depth": (2, 4, "linear")},
}


def quick_environ(timeframe: str = "1h") -> dict[str, str]:
    """The quick mode's small models as CVN_HPO_* variables: their defaults and their search ranges."""
    from cvn_assets.hyperparams.keys import default_key, range_keys

    env = {
        default_key(m, timeframe, p): str(v) for m, params in QUICK_PARAMS.items() for p, v in params.items()
    }
    for model, ranges in QUICK_RANGES.items():
        for param, bounds in ranges.items():
            env |= dict(zip(range_keys(model, timeframe, param), map(str, bounds), strict=True))
    return env


def sweep_file(sweeps: Path, quick: bool, source: Path) -> Path:
    """The sweep a Dagster bench serves from `sweeps`: the quick sweep (with its small models set in the
    environment, which wins over ftf_config), or a copy of `source`."""
    if quick:
        path = sweeps / "benchquick.yaml"
        path.write_text(yaml.safe_dump(QUICK_CONFIG))
        os.environ.update(quick_environ())
        return path
    path = sweeps / source.name
    shutil.copy(source, path)
    return path


def quick_params(model: str, committed: dict[str, Any]) -> dict[str, Any]:
    """The committed defaults of `model` with the quick mode's small sizes."""
    return {**committed, **QUICK_PARAMS.get(model, {})}


def largest_btc_fold() -> tuple[SweepPlan, FoldDataset]:
    from cvn_assets import steps
    from cvn_assets.core.config import load_config
    from cvn_assets.core.sweep_plan import plan_sweep

    plan = plan_sweep(load_config())
    fold = plan.folds[-1]
    bars = steps.ohlcv(plan.config, "BTCUSD")
    return plan, steps.cell_dataset(plan.config, "BTCUSD", fold, bars)


def quick_fold(models: list[str] | None = None) -> tuple[SweepPlan, FoldDataset]:
    """The quick mode's one fold of one synthetic crypto (with `models` configured: the default config's)."""
    from cvn_assets import steps
    from cvn_assets.core.config import load_config, parse_config
    from cvn_assets.core.sweep_plan import plan_sweep

    raw = {**QUICK_CONFIG, "models": {m: {} for m in models or load_config().models}}
    plan = plan_sweep(parse_config(raw))
    fold = plan.folds[0]
    bars = steps.ohlcv(plan.config, "SYNA")
    return plan, steps.cell_dataset(plan.config, "SYNA", fold, bars)


def bench_fold(quick: bool) -> tuple[SweepPlan, FoldDataset]:
    return quick_fold() if quick else largest_btc_fold()
