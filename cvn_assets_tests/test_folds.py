from __future__ import annotations

import pandas as pd
import pytest

from cvn_assets.core.config import FoldSettings, load_config, parse_config
from cvn_assets.core.datasets import FeatureFrame, build_fold_dataset, label_features
from cvn_assets.core.features import compute_features
from cvn_assets.core.folds import plan_folds
from cvn_assets.core.labels import triple_barrier_labels
from cvn_assets.core.loaders import load_ohlcv
from cvn_assets.core.sweep_plan import plan_sweep
from cvn_assets_tests.conftest import small_raw_config

ORIGIN = pd.Timestamp("2022-01-01", tz="UTC")
HOUR = pd.Timedelta("1h")


def _plan(last_bar: pd.Timestamp, **settings: object) -> list:
    base = {"train": "30d", "validation": "10d", "test": "10d"} | settings
    return plan_folds(ORIGIN, last_bar, timeframe="1h", settings=FoldSettings(**base), purge_bars=24)


def test_windows_and_purge_gaps() -> None:
    folds = _plan(ORIGIN + pd.Timedelta("100d"))
    f0 = folds[0]
    assert f0.train_start == ORIGIN and f0.train_end == ORIGIN + pd.Timedelta("30d")
    assert f0.val_start - f0.train_end == 24 * HOUR and f0.test_start - f0.val_end == 24 * HOUR
    assert f0.test_end - f0.test_start == pd.Timedelta("10d")
    assert folds[1].test_start - f0.test_start == pd.Timedelta("10d")  # step defaults to the test length
    assert all(f.train_start == ORIGIN for f in folds)  # expanding
    assert all(f.test_end <= ORIGIN + pd.Timedelta("100d") + HOUR for f in folds)


def test_sliding_embargo_and_max_folds() -> None:
    folds = _plan(ORIGIN + pd.Timedelta("200d"), scheme="sliding", step="5d", embargo_bars=6, max_folds=3)
    assert len(folds) == 3
    assert [f.train_start - ORIGIN for f in folds] == [pd.Timedelta(days=d) for d in (0, 5, 10)]
    assert all(f.train_end - f.train_start == pd.Timedelta("30d") for f in folds)
    assert folds[0].val_start - folds[0].train_end == 30 * HOUR  # purge 24 + embargo 6


def test_appending_bars_adds_folds_and_never_moves_one() -> None:
    short = _plan(ORIGIN + pd.Timedelta("80d"))
    longer = _plan(ORIGIN + pd.Timedelta("140d"))
    assert len(longer) > len(short) > 0
    assert longer[: len(short)] == short


def test_plan_is_derived_from_data_not_the_clock() -> None:
    config = parse_config(small_raw_config())
    assert plan_sweep(config).folds == plan_sweep(config).folds
    more = small_raw_config()
    more["data"]["synthetic"]["n_bars"] += 24 * 40
    grown = plan_sweep(parse_config(more | {"folds": {**more["folds"], "max_folds": 10}}))
    assert grown.folds[:2] == plan_sweep(config).folds


@pytest.mark.parametrize("crypto", ["BTCUSD", "SYNA"])
def test_no_training_label_reaches_into_validation_or_test(crypto: str) -> None:
    config = load_config()
    plan = plan_sweep(config)
    bars = load_ohlcv(config, crypto)
    feats, fs = compute_features(bars, config.features.windows)
    labels = triple_barrier_labels(bars, horizon=config.labels.horizon_bars, take_profit_atr=config.labels.take_profit_atr,
                                   stop_loss_atr=config.labels.stop_loss_atr, atr_window=config.labels.atr_window)  # fmt: skip
    for fold in plan.folds:
        ds = build_fold_dataset(
            label_features(
                crypto, bars, [FeatureFrame(crypto, "base", feats, fs.feature_hash)], labels, fold
            ),
            fold,
        )
        assert ds.train["label_end"].max() < fold.val_start
        assert ds.validation["label_end"].max() < fold.test_start
        assert ds.train.index.max() < fold.train_end and ds.validation.index.min() >= fold.val_start
        assert ds.test.index.min() >= fold.test_start and ds.test.index.max() < fold.test_end
        # The purge must not throw away labelled rows wholesale: the gap is what guarantees the property.
        assert (
            len(ds.train)
            >= (fold.train_end - fold.train_start) / pd.Timedelta("1h") - config.features.windows[-1] - 2
        )


def test_fold_dataset_hash_is_deterministic_and_content_sensitive() -> None:
    config = parse_config(small_raw_config())
    plan = plan_sweep(config)
    fold = plan.folds[0]
    bars = load_ohlcv(config, "SYNA")

    def dataset(frame: pd.DataFrame):  # noqa: ANN202
        feats, fs = compute_features(frame, config.features.windows)
        labels = triple_barrier_labels(frame, horizon=12, take_profit_atr=2, stop_loss_atr=1, atr_window=12)
        return build_fold_dataset(
            label_features(
                "SYNA", frame, [FeatureFrame("SYNA", "base", feats, fs.feature_hash)], labels, fold
            ),
            fold,
        )

    assert dataset(bars).data_hash == dataset(bars.copy()).data_hash
    nudged = bars.copy()
    nudged.iloc[500, nudged.columns.get_loc("volume")] *= 1.01
    assert dataset(nudged).data_hash != dataset(bars).data_hash
