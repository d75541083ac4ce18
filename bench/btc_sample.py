"""What the model benches share: the default config's plan and the bundled BTC sample's largest fold."""

from __future__ import annotations

from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.sweep_plan import SweepPlan


def largest_btc_fold() -> tuple[SweepPlan, FoldDataset]:
    from cvn_assets import steps
    from cvn_assets.core.config import load_config
    from cvn_assets.core.sweep_plan import plan_sweep

    plan = plan_sweep(load_config())
    fold = plan.folds[-1]
    bars = steps.ohlcv(plan.config, "BTCUSD")
    return plan, steps.fold_dataset(fold, steps.features(plan.config, "BTCUSD", fold, bars))
