"""The working-set estimate, with numbers: each part from rows x columns x bytes, the shape of a fold from
the config and its windows; and the peak-memory reading every step records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from cvn_assets import steps
from cvn_assets.core.config import DEFAULT_CONFIG_PATH, SweepConfig, load_config, parse_config
from cvn_assets.core.features import compute_features
from cvn_assets.core.peak_memory import current_rss, measure_peak, process_peak, read_peak, reset_peak
from cvn_assets.core.sweep_plan import fold_of
from cvn_assets.core.working_set import (
    DEFAULT_MODEL_CELL_BYTES,
    FRAME_PASSES,
    GIB,
    INTERPRETER_BYTES,
    MIB,
    MODEL_CELL_BYTES,
    MODEL_FIXED_BYTES,
    RUN_FIXED_BYTES,
    FeatureLayout,
    RunShape,
    bars_shape,
    estimate_working_set,
    fold_shape,
    n_feature_columns,
    span_bars,
)

DEMO_FOLD = "f00_2018-08-28"


@pytest.mark.parametrize("windows", [[6, 24, 72], [15, 60, 240, 1440], [5], [24, 6, 24]])
def test_feature_columns_are_what_the_feature_code_computes(windows: list[int]) -> None:
    n = max(windows) + 10
    index = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    close = pd.Series(np.linspace(100, 110, n), index=index)
    bars = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 5.0})
    features, _ = compute_features(bars, windows)
    assert n_feature_columns(windows) == features.shape[1]


def test_each_part_is_rows_times_columns_times_bytes() -> None:
    shape = RunShape(
        bars_loaded=100_000,
        feature_rows=100_000,
        span_rows=80_000,
        fit_rows=60_000,
        n_features=17,
        models=("xgboost", "lightgbm", "my_new_model"),
    )
    ws = estimate_working_set(shape)
    assert shape.frame_columns == 17 + 4 + 2  # features, the four label columns, close and bar
    assert ws.interpreter == INTERPRETER_BYTES
    assert ws.run == RUN_FIXED_BYTES + 3 * MODEL_FIXED_BYTES
    assert ws.bars == round(FRAME_PASSES * 100_000 * 6 * 8)  # 4.8 MB of OHLCV and timestamps per pass
    assert ws.features == round(FRAME_PASSES * 100_000 * 23 * 8)  # 18.4 MB per pass
    assert ws.dataset == round(FRAME_PASSES * 80_000 * 23 * 8)  # 14.72 MB per pass
    cells = 60_000 * 17
    assert MODEL_CELL_BYTES["xgboost"] == 5 and MODEL_CELL_BYTES["lightgbm"] == 9
    assert ws.models == cells * (5 + 9 + DEFAULT_MODEL_CELL_BYTES)  # 22.44 MB: each library's own copy
    assert ws.total == sum(v for k, v in ws.parts().items() if k != "total") == ws.parts()["total"]
    assert ws.total_gib == pytest.approx(ws.total / GIB)


def test_a_second_asset_doubles_what_is_loaded_and_its_columns_what_is_featurized() -> None:
    one = RunShape(200_000, 200_000, 150_000, 120_000, 17, ("xgboost",))
    two = RunShape(200_000, 200_000, 150_000, 120_000, 34, ("xgboost",), n_assets=2)
    a, b = estimate_working_set(one), estimate_working_set(two)
    assert b.bars == 2 * a.bars
    assert b.features == round(FRAME_PASSES * 200_000 * (34 + 6) * 8)
    assert b.models == 2 * a.models and (b.run, b.interpreter) == (a.run, a.interpreter)


def _with_feature_sets(feature_sets: object, **more: object) -> SweepConfig:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    return parse_config(raw | {"feature_sets": feature_sets, **more})


def test_the_btc_overlay_estimates_about_twice_base_at_the_same_size() -> None:
    base, overlay = _with_feature_sets(["base"]), _with_feature_sets(["btc_overlay"])
    fold = fold_of(base, DEMO_FOLD)
    for crypto in ("SYNA", "SYNB"):
        layout = steps.feature_layout(overlay, crypto)
        assert (layout.n_assets, layout.n_features) == (2, 34)
        assert [n for _, n in layout.model_features] == [34] * 4
        big = 1_500_000 * 60  # bars recorded: the old system's minute series
        ratio = (
            estimate_working_set(fold_shape(overlay, fold, big, layout)).total
            / estimate_working_set(fold_shape(base, fold, big, steps.feature_layout(base, crypto))).total
        )
        assert 1.7 < ratio < 2.1
    # BTC itself: the overlay equals base (the same columns, one series).
    assert steps.feature_layout(overlay, "BTCUSD") == steps.feature_layout(base, "BTCUSD")


def test_a_second_feature_set_counts_its_own_columns_for_its_own_models() -> None:
    cfg = _with_feature_sets({"base": {}, "btc_overlay": {"models": ["logreg"]}})
    layout = steps.feature_layout(cfg, "SYNA")
    assert layout == FeatureLayout(
        2, 17 + 34, (("xgboost", 17), ("lightgbm", 17), ("catboost", 17), ("logreg", 17), ("logreg", 34))
    )
    shape = fold_shape(cfg, fold_of(cfg, DEMO_FOLD), 20_111, layout)
    assert shape.models == ("xgboost", "lightgbm", "catboost", "logreg", "logreg")
    assert shape.model_features == (17, 17, 17, 17, 34)


def test_the_demo_fold_shape_comes_from_its_windows() -> None:
    cfg = load_config()  # hourly; train 360d, validation 60d, test 90d; purge = horizon = 24 bars
    fold = fold_of(cfg, DEMO_FOLD)
    shape = fold_shape(cfg, fold, bars_loaded=20_111)
    assert shape.span_rows == 360 * 24 + 24 + 60 * 24 + 24 + 90 * 24 == 12_288
    assert shape.fit_rows == 360 * 24 + 60 * 24 == 10_080
    assert shape.bars_loaded == shape.feature_rows == 20_111  # the crypto's whole series
    assert shape.n_features == 17 and shape.models == ("xgboost", "lightgbm", "catboost", "logreg")
    # Bars not recorded yet: the least the features step loads, the span and the labels' horizon.
    assert fold_shape(cfg, fold).bars_loaded == 12_288 + 24


def test_more_data_means_a_larger_estimate_and_an_ohlcv_run_computes_no_features() -> None:
    cfg = load_config()
    fold = fold_of(cfg, DEMO_FOLD)
    small = estimate_working_set(fold_shape(cfg, fold, 20_000))
    large = estimate_working_set(fold_shape(cfg, fold, 2_000_000))
    assert large.total > small.total and large.features == pytest.approx(100 * small.features, rel=1e-6)
    bars_only = estimate_working_set(bars_shape(cfg, 20_000))
    assert bars_only.features == bars_only.dataset == bars_only.models == 0
    assert bars_only.bars == round(FRAME_PASSES * 20_000 * 6 * 8)
    # The demo's hourly partition is mostly the interpreter and the libraries: well under 1 GiB.
    assert INTERPRETER_BYTES < small.total < GIB


def test_span_bars_counts_both_ends() -> None:
    first, last = pd.Timestamp("2024-01-01T00:00Z"), pd.Timestamp("2024-01-02T00:00Z")
    assert span_bars(first, last, "1h") == 25
    assert span_bars(first, last, "1m") == 1441


def test_the_estimate_prints_its_parts_in_mib() -> None:
    ws = estimate_working_set(RunShape(1_000_000, 1_000_000, 900_000, 800_000, 17, ("catboost",)))
    text = str(ws)
    assert text.startswith(f"{ws.total_gib:.2f} GiB (interpreter {INTERPRETER_BYTES / MIB:,.0f}, ")
    assert "dataset" in text and text.endswith(" MiB)")


def test_peak_memory_sees_a_large_allocation_and_resets() -> None:
    with measure_peak() as first:
        block = np.ones(200 * MIB // 8)  # 200 MiB, touched
        del block
    assert first.peak_bytes - first.start_bytes > 150 * MIB
    if not first.since_reset:
        pytest.skip("this kernel does not let a process reset its peak RSS (getrusage fallback)")
    assert reset_peak()
    assert read_peak() < first.peak_bytes - 100 * MIB  # the step's peak starts again...
    assert process_peak() >= first.peak_bytes  # ...and the process's own is kept across resets
    with measure_peak() as second:
        pass
    assert second.since_reset and second.peak_bytes >= second.start_bytes > 0
    assert current_rss() > 0
