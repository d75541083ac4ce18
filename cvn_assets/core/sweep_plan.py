"""A sweep plan: the validated config plus the fold plan derived from the universe's data.

The fold windows are shared by every crypto (anchored at the latest first bar across the universe, or the
configured origin), so one fold id means one calendar window everywhere and a model row and its baselines
can only ever be compared on the same window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from cvn_assets.config import SweepConfig
from cvn_assets.core.errors import ConfigError, DataValidationError
from cvn_assets.core.folds import Fold, plan_folds, plan_span
from cvn_assets.core.loaders import load_ohlcv

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepPlan:
    config: SweepConfig
    folds: tuple[Fold, ...]
    # Cryptos whose data was rejected while planning: their ohlcv partition fails with this message.
    rejected: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.config.run_id

    @property
    def fold_ids(self) -> list[str]:
        return [f.fold_id for f in self.folds]

    def fold(self, fold_id: str) -> Fold:
        for f in self.folds:
            if f.fold_id == fold_id:
                return f
        raise KeyError(f"fold '{fold_id}' is not in the plan of sweep {self.run_id} (folds: {self.fold_ids})")


def plan_sweep(config: SweepConfig, source: str | None = None) -> SweepPlan:
    """Read each crypto's timestamps and derive the folds; a plan that fits no fold fails naming `folds`."""
    firsts: list[pd.Timestamp] = []
    lasts: list[pd.Timestamp] = []
    rejected: dict[str, str] = {}
    for crypto in config.cryptos:
        try:
            index = load_ohlcv(config, crypto).index
        except DataValidationError as exc:
            log.warning("ohlcv for %s rejected while planning folds: %s", crypto, exc)
            rejected[crypto] = str(exc)
            continue
        firsts.append(index[0])
        lasts.append(index[-1])
    if not firsts:
        raise ConfigError(
            "universe", "every crypto's data was rejected: " + "; ".join(rejected.values()), source
        )

    origin = pd.Timestamp(config.folds.origin, tz="UTC") if config.folds.origin else max(firsts)
    last_bar = min(lasts)
    folds = plan_folds(
        origin, last_bar, timeframe=config.timeframe, settings=config.folds, purge_bars=config.purge_bars
    )
    if not folds:
        need = plan_span(config.folds, config.timeframe, config.purge_bars)
        raise ConfigError(
            "folds",
            f"the fold plan does not fit the data: one fold needs {need} from {origin} "
            f"(train + validation + test + purges), the data common to the universe ends at {last_bar}",
            source,
        )
    return SweepPlan(config=config, folds=tuple(folds), rejected=rejected)
