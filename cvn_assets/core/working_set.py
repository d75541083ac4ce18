"""The working set of one run: the memory a partition's run peaks at, estimated from what it computes.

A crypto x fold run executes every step of its partition in one process (the in-process executor): each
`features/<set>` step loads the crypto's whole recorded series (and the series of the cryptos the set
requires, such as BTC for `btc_overlay`) and computes the set's features over all of it before keeping
the fold's span; `fold_dataset` labels the series and splits the span into windows; each model step fits
its library on the train and validation matrix of its feature set; the rest (predictions, ensembles,
economics) is small. The estimate is the sum of

    interpreter   Python with dagster, pandas, scikit-learn and the boosting libraries imported
    run           what every run adds whatever its size (Dagster's run machinery, the artifact store's
                  first parquet write, the results store) and each model library's runtime
    bars          the series loaded: bars x (OHLCV + timestamp) x 8 bytes x assets (the crypto and every
                  crypto a feature set requires)
    features      every feature set's columns, labels and prices over the whole loaded series:
                  bars x columns x 8 bytes (a cross-asset set's columns count the other asset's too)
    dataset       the fold's span, labeled and split: span bars x columns x 8 bytes
    models        each model's copy of its matrix in its library's format: fit rows x its feature set's
                  columns x bytes

where bars, features and dataset are counted `FRAME_PASSES` times (each frame is built, written as
parquet, read back by the next step and copied into windows, and the allocator keeps much of what it
freed). Pure: no Dagster, no data read; the Dagster layer (`defs/sizing.py`) feeds it the config and what
the instance recorded about the crypto's bars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from cvn_assets.core.config import SweepConfig
from cvn_assets.core.datasets import MARKET_COLUMNS
from cvn_assets.core.folds import Fold
from cvn_assets.core.labels import LABEL_COLUMNS
from cvn_assets.core.timeframes import bar_delta

GIB = 1024**3
MIB = 1024**2
BYTES_PER_VALUE = 8  # every frame the steps build holds float64 (or int64 / datetime64) values
OHLCV_COLUMNS = 6  # open, high, low, close, volume and the timestamp index

# Measured once (2 cores, Python 3.11, Linux; `bench/memory_estimate.py` prints it again beside this value):
# VmHWM of a fresh `python -c "import cvn_assets.definitions, dagster, pandas, sklearn, xgboost, lightgbm,
# catboost, optuna"`, which is what a run worker imports before its first step.
INTERPRETER_BYTES = 305 * MIB
# Measured on the demo's hourly partitions, where the data is a few MB: their peak minus the interpreter,
# split into a part every run pays and a part per configured model (the library's runtime, thread pools
# and allocator; the fitted model; its predictions and its share of the ensembles over it).
RUN_FIXED_BYTES = 112 * MIB
MODEL_FIXED_BYTES = 25 * MIB
# Calibrated on one size, checked on the others (`bench/memory_estimate.py` prints both): fitted on a
# synthetic universe at 300,000 minute bars (its first and last fold: 3% over and 3% under the measured
# peak), then within 8% at 150,000, 600,000 and 1,500,000 minute bars and on the demo's hourly partitions.
# How many times the frames' bytes are resident at the run's peak: each frame is built, written as
# parquet, read back by the next steps (every model step reads the fold's dataset) and copied into
# windows, and the allocator keeps part of what was freed.
FRAME_PASSES = 2.7
# Bytes per feature value a library holds while it fits (on top of the frame): its own copy of the
# matrix and its binned form. XGBoost and CatBoost convert to float32 (4) and bin to one byte; LightGBM
# takes a float64 C-ordered copy (8) before binning; scikit-learn's scaler copies the float64 matrix.
MODEL_CELL_BYTES: Mapping[str, int] = {"xgboost": 5, "lightgbm": 9, "catboost": 5, "logreg": 8}
DEFAULT_MODEL_CELL_BYTES = 8  # a model not listed: assume one float64 copy


def n_feature_columns(windows: Sequence[int]) -> int:
    """Columns `core.features.compute_features` returns: two window-free columns and five per window
    (a test holds this to the feature code)."""
    return 2 + 5 * len(set(windows))


@dataclass(frozen=True)
class FeatureLayout:
    """What a sweep's feature sets make of one crypto's run: the series loaded, the feature columns of
    every set together, and each (model, its set's column count) pair trained (`steps.feature_layout`)."""

    n_assets: int
    n_features: int
    model_features: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class RunShape:
    """What a run computes, in rows and columns: the estimate's inputs."""

    bars_loaded: int  # bars of one asset's series the run loads (every recorded bar)
    feature_rows: int  # bars the features step computes over: the whole loaded series; 0 without a fold
    span_rows: int  # bars in the fold's span [train_start, test_end); 0 for a run without a fold
    fit_rows: int  # train + validation bars: the matrix each model fits and evaluates on
    n_features: int
    models: tuple[str, ...] = ()
    n_assets: int = 1  # series the run loads (a cross-asset feature set loads 2)
    # Feature columns each model fits on (its feature set's), aligned with `models`; empty: n_features.
    model_features: tuple[int, ...] = ()

    @property
    def frame_columns(self) -> int:
        """Columns of the labeled frame: features, labels and the market columns beside them."""
        return self.n_features + len(LABEL_COLUMNS) + len(MARKET_COLUMNS)


@dataclass(frozen=True)
class WorkingSet:
    """The estimate and its parts, in bytes."""

    shape: RunShape
    interpreter: int
    run: int
    bars: int
    features: int
    dataset: int
    models: int

    @property
    def total(self) -> int:
        return self.interpreter + self.run + self.bars + self.features + self.dataset + self.models

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    def parts(self) -> dict[str, int]:
        """Each part in bytes, and the total: what goes into metadata."""
        return {
            "interpreter": self.interpreter,
            "run": self.run,
            "bars": self.bars,
            "features": self.features,
            "dataset": self.dataset,
            "models": self.models,
            "total": self.total,
        }

    def __str__(self) -> str:
        parts = ", ".join(
            f"{name} {value / MIB:,.0f}" for name, value in self.parts().items() if name != "total"
        )
        return f"{self.total_gib:.2f} GiB ({parts} MiB)"


def estimate_working_set(shape: RunShape) -> WorkingSet:
    """The peak memory of a run of this shape (see the module's docstring for the parts)."""
    value = BYTES_PER_VALUE
    columns = shape.model_features or (shape.n_features,) * len(shape.models)
    models = sum(
        shape.fit_rows * n * MODEL_CELL_BYTES.get(m, DEFAULT_MODEL_CELL_BYTES)
        for m, n in zip(shape.models, columns, strict=True)
    )
    return WorkingSet(
        shape=shape,
        interpreter=INTERPRETER_BYTES,
        run=RUN_FIXED_BYTES + MODEL_FIXED_BYTES * len(shape.models),
        bars=round(FRAME_PASSES * shape.n_assets * shape.bars_loaded * OHLCV_COLUMNS * value),
        features=round(FRAME_PASSES * shape.feature_rows * shape.frame_columns * value),
        dataset=round(FRAME_PASSES * shape.span_rows * shape.frame_columns * value),
        models=models,
    )


def _bars(start: pd.Timestamp, end: pd.Timestamp, timeframe: str) -> int:
    return max(0, int((end - start) / bar_delta(timeframe)))


def base_layout(cfg: SweepConfig) -> FeatureLayout:
    """The layout of the base feature set alone, with every configured model."""
    n = n_feature_columns(cfg.features.windows)
    return FeatureLayout(1, n, tuple((m, n) for m in cfg.models))


def fold_shape(
    cfg: SweepConfig, fold: Fold, bars_loaded: int | None = None, layout: FeatureLayout | None = None
) -> RunShape:
    """The shape of a crypto x fold run. `bars_loaded`: the crypto's recorded bars (what its `ohlcv`
    materialization holds); None when unknown, then the least the features step can load: the fold's
    span and the labels' horizon after it. `layout`: the sweep's feature sets for this crypto (default:
    base alone)."""
    layout = layout or base_layout(cfg)
    gap = cfg.purge_bars + cfg.folds.embargo_bars
    span = _bars(fold.train_start, fold.test_end, cfg.timeframe)
    loaded = max(bars_loaded or 0, span + gap)
    return RunShape(
        bars_loaded=loaded,
        feature_rows=loaded,
        span_rows=span,
        fit_rows=_bars(fold.train_start, fold.train_end, cfg.timeframe)
        + _bars(fold.val_start, fold.val_end, cfg.timeframe),
        n_features=layout.n_features,
        models=tuple(m for m, _ in layout.model_features),
        n_assets=layout.n_assets,
        model_features=tuple(n for _, n in layout.model_features),
    )


def bars_shape(cfg: SweepConfig, bars_loaded: int | None = None, n_assets: int = 1) -> RunShape:
    """The shape of a run without a fold: an `ohlcv` run (its bars) or a sweep-wide one (none)."""
    return RunShape(
        bars_loaded=bars_loaded or 0,
        feature_rows=0,
        span_rows=0,
        fit_rows=0,
        n_features=n_feature_columns(cfg.features.windows),
        n_assets=n_assets,
    )


def span_bars(first_bar: pd.Timestamp, last_bar: pd.Timestamp, timeframe: str) -> int:
    """Bars from the first to the last bar, both included (gaps within the tolerance count as bars)."""
    return _bars(first_bar, last_bar, timeframe) + 1
