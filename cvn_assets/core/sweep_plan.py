"""A sweep's fold plan: derived from each crypto's data span (first and last bar), never from the clock.

The fold windows are shared by every crypto (anchored at the first midnight on or after the latest first
bar across the universe, or at the configured origin), so one fold id means one calendar window everywhere and a model row and its baselines
can only ever be compared on the same window. A crypto whose data was rejected, or is too short for even
one fold, is named in `rejected` and left out of the plan; the others are unaffected.

`plan_from_spans` is pure: the Dagster layer feeds it the spans recorded by the `ohlcv` materializations,
so no data is read to plan. `plan_sweep` reads the data itself (`cvn plan`, tests and benches).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from cvn_assets.core.config import SweepConfig
from cvn_assets.core.errors import ConfigError, CvnError
from cvn_assets.core.folds import Fold, fold_from_id, plan_folds, plan_span
from cvn_assets.core.timeframes import parse_duration

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSpan:
    first_bar: pd.Timestamp
    last_bar: pd.Timestamp


@dataclass(frozen=True)
class SweepPlan:
    config: SweepConfig
    folds: tuple[Fold, ...]
    # Cryptos left out of the plan, with why: rejected data, or too short for one fold.
    rejected: dict[str, str] = field(default_factory=dict)
    # Set when the fold settings fit no crypto's data at all: the config is what to change, named by key.
    no_fit: ConfigError | None = None

    @property
    def run_id(self) -> str:
        return self.config.run_id

    @property
    def fold_ids(self) -> list[str]:
        return [f.fold_id for f in self.folds]

    @property
    def cryptos(self) -> list[str]:
        """The cryptos the plan covers: every crypto of the universe that was not rejected."""
        return [c for c in self.config.cryptos if c not in self.rejected]

    def fold(self, fold_id: str) -> Fold:
        for f in self.folds:
            if f.fold_id == fold_id:
                return f
        raise KeyError(f"fold '{fold_id}' is not in the plan of sweep {self.run_id} (folds: {self.fold_ids})")


def _configured_origin(config: SweepConfig) -> pd.Timestamp | None:
    return pd.Timestamp(config.folds.origin, tz="UTC") if config.folds.origin else None


def fold_of(config: SweepConfig, fold_id: str) -> Fold:
    """The fold a fold id (a partition key) stands for under this config: no data needed."""
    return fold_from_id(
        fold_id,
        timeframe=config.timeframe,
        settings=config.folds,
        purge_bars=config.purge_bars,
        origin=_configured_origin(config),
    )


def _leave_out(
    usable: dict[str, DataSpan], rejected: dict[str, str], start: pd.Timestamp | None, need: pd.Timedelta
) -> None:
    """Move to `rejected` every crypto whose span cannot hold one fold from `start` (None: from its own
    first bar), naming its span."""
    for crypto, span in list(usable.items()):
        begin = span.first_bar if start is None else start
        if span.first_bar > begin or span.last_bar - begin < need:
            problem = (
                "shorter than one fold needs"
                if start is None
                else f"which does not hold one fold from the origin {start}"
            )
            rejected[crypto] = (
                f"its data covers {span.first_bar} to {span.last_bar}, {problem} "
                f"({need}: train + validation + test + purges)"
            )
            del usable[crypto]


def _no_fit(config: SweepConfig, spans: dict[str, DataSpan], need: pd.Timedelta) -> ConfigError | None:
    """When loaded data exists but no crypto's span holds one fold: the fold setting to shorten (the longest
    of train, validation and test), with what one fold needs and what the longest data covers."""
    if not spans:
        return None
    longest = max(s.last_bar - s.first_bar for s in spans.values())
    lengths = {k: parse_duration(getattr(config.folds, k)) for k in ("train", "validation", "test")}
    key = max(lengths, key=lengths.__getitem__)
    return ConfigError(
        f"folds.{key}",
        f"one fold needs {need} of data (train {config.folds.train} + validation {config.folds.validation} + "
        f"test {config.folds.test} + purges and embargo), and the longest crypto's data covers {longest}: "
        f"shorten folds.{key} or load more data",
    )


def plan_from_spans(
    config: SweepConfig, spans: dict[str, DataSpan], rejected: dict[str, str] | None = None
) -> SweepPlan:
    """The folds every crypto with a span covers (test window and the purge after it inside its data).
    A crypto whose span cannot hold one fold from the origin is moved to `rejected`, naming its span."""
    rejected = dict(rejected or {})
    need = plan_span(config.folds, config.timeframe, config.purge_bars)
    usable = dict(spans)
    origin = _configured_origin(config)
    if origin is None:
        # A crypto too short on its own would also push the shared origin past the others' data.
        _leave_out(usable, rejected, None, need)
        if usable:
            # The latest first bar, moved on to the next midnight: fold windows then start on calendar days
            # and their ids read as dates.
            origin = max(s.first_bar for s in usable.values()).ceil("D")
    if origin is not None:
        _leave_out(usable, rejected, origin, need)
    if origin is None or not usable:
        return SweepPlan(config=config, folds=(), rejected=rejected, no_fit=_no_fit(config, spans, need))
    folds = plan_folds(
        origin,
        min(s.last_bar for s in usable.values()),
        timeframe=config.timeframe,
        settings=config.folds,
        purge_bars=config.purge_bars,
    )
    return SweepPlan(config=config, folds=tuple(folds), rejected=rejected)


def plan_sweep(config: SweepConfig) -> SweepPlan:
    """Read each crypto's bars and plan the folds (what `cvn plan` shows); rejected data is named per crypto."""
    from cvn_assets.core.loaders import load_ohlcv

    spans: dict[str, DataSpan] = {}
    rejected: dict[str, str] = {}
    for crypto in config.cryptos:
        try:
            index = load_ohlcv(config, crypto).index
        except CvnError as exc:
            log.warning("ohlcv for %s rejected while planning folds: %s", crypto, exc)
            rejected[crypto] = str(exc)
            continue
        spans[crypto] = DataSpan(index[0], index[-1])
    return plan_from_spans(config, spans, rejected)
