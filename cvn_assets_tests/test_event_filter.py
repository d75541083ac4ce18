"""The CUSUM event filter: López de Prado's symmetric filter on the bundled BTC sample, past-only, and a
sweep with it on, where labels, training, the variants' and the baselines' backtests use its bars only."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from cvn_assets import steps
from cvn_assets.core.backtest import select_trades, simulate
from cvn_assets.core.baselines import buy_and_hold, random_entries, random_matched, window_paths
from cvn_assets.core.config import load_config, parse_config
from cvn_assets.core.economics import entry_signal, label_exits, trade_signal
from cvn_assets.core.event_filter import cusum_events
from cvn_assets.core.loaders import load_ohlcv
from cvn_assets.core.sweep_plan import plan_sweep
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.sweep import Sweep
from cvn_assets.store.engine import get_engine
from cvn_assets.store.schema import finetune_baselines, finetune_results
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.in_process import materialize_sweep, sweep_defs

FILTER = {"enabled": True, "k": 2.0, "vol_window": 24}


def afml_cusum(close: pd.Series, k: float, vol_window: int) -> pd.DatetimeIndex:
    """An independent implementation: getTEvents of Advances in Financial Machine Learning (snippet 2.4)
    on log prices, with the threshold h = k x the rolling standard deviation of the log returns."""
    diff = np.log(close).diff().dropna()
    h = k * diff.rolling(vol_window).std()
    t_events, s_pos, s_neg = [], 0.0, 0.0
    for i in diff.index[1:]:
        if np.isnan(h.loc[i]):
            continue
        s_pos, s_neg = max(0.0, s_pos + diff.loc[i]), min(0.0, s_neg + diff.loc[i])
        if s_neg < -h.loc[i]:
            s_neg = 0.0
            t_events.append(i)
        elif s_pos > h.loc[i]:
            s_pos = 0.0
            t_events.append(i)
    return pd.DatetimeIndex(t_events)


@pytest.fixture(scope="module")
def btc_close() -> pd.Series:
    return load_ohlcv(load_config(), "BTCUSD")["close"]


@pytest.mark.parametrize(("k", "vol_window"), [(2.0, 24), (1.0, 48), (3.5, 12)])
def test_cusum_events_match_lopez_de_prados_filter_on_the_btc_sample(
    btc_close: pd.Series, k: float, vol_window: int
) -> None:
    events = cusum_events(btc_close, k=k, vol_window=vol_window)
    expected = afml_cusum(btc_close, k, vol_window)
    assert events.index.equals(btc_close.index) and events.dtype == bool
    assert events[events].index.equals(expected)
    assert 0.005 < events.mean() < 0.5  # a filter: it keeps some bars, not all


def test_an_event_never_depends_on_a_later_bar(btc_close: pd.Series) -> None:
    before = cusum_events(btc_close, k=2.0, vol_window=24)
    for t in (500, 9_000, len(btc_close) - 2):
        changed = btc_close.copy()
        changed.iloc[t + 1 :] *= np.linspace(0.5, 1.5, len(changed) - t - 1)
        after = cusum_events(changed, k=2.0, vol_window=24)
        assert before.iloc[: t + 1].equals(after.iloc[: t + 1])


def _dataset(filtered: bool):  # noqa: ANN202
    cfg = parse_config(small_raw_config(event_filter=FILTER if filtered else {}))
    fold = plan_sweep(cfg).folds[0]
    return steps.cell_dataset(cfg, "SYNA", fold, load_ohlcv(cfg, "SYNA"))


def test_with_the_filter_labels_and_training_rows_are_its_event_bars_only() -> None:
    plain, filtered = _dataset(False), _dataset(True)
    for split in ("train", "validation", "test"):
        frame = filtered.split(split)
        assert frame.index.equals(plain.split(split).index)  # every bar stays, for marking the equity
        X, y = filtered.xy(split)
        assert X.index.equals(frame.index[frame["event"]]) and len(y) == int(frame["event"].sum())
        assert 0 < len(y) < len(frame)
    fit = filtered.event_filter
    assert fit is not None and plain.event_filter is None
    assert fit.threshold == pytest.approx(2.0 * fit.sigma) and fit.sigma > 0
    assert fit.train_events == int(filtered.train["event"].sum())
    assert filtered.data_hash != plain.data_hash


def test_variants_and_baselines_enter_on_event_bars_only() -> None:
    split = _dataset(True).split("test")
    allowed = split["event"].to_numpy()
    exit_pos, exit_price = label_exits(split)
    # A variant that always wants in trades exactly the greedy walk over the event bars.
    always = np.ones(int(allowed.sum()))
    signal = entry_signal(split, always, 0.5)
    assert (signal == allowed).all()
    entries = select_trades(allowed, exit_pos)
    assert allowed[entries].all()
    walked = simulate(split["close"].to_numpy(), entries, exit_pos[entries], exit_price[entries],
                      cost=0.001, bars_per_year=8760)  # fmt: skip
    assert trade_signal(split, signal, 0.001, 8760) == walked
    # Random entries at probability 1 on the event bars only: every seed walks those same trades.
    randomly = random_entries(split, 0.001, 8760, entry_prob=1.0, n_seeds=3, seed_key=(1,))
    assert randomly.n_trades == walked.n_trades and randomly.total_return == pytest.approx(
        walked.total_return
    )
    # Luck at the variant's own trade count, on event bars: exactly as many trades.
    matched = random_matched(window_paths(split, 0.001), 8760, n_trades=int(walked.n_trades), n_seeds=5,
                             seed_key=(2,))  # fmt: skip
    assert matched.n_trades == walked.n_trades
    # buy_and_hold enters at the first event bar.
    first = int(np.argmax(allowed))
    held = buy_and_hold(split, 0.001, 8760)
    close = split["close"].to_numpy()
    assert held.total_return == pytest.approx(close[-1] / close[first] * (1 - 0.001) ** 2 - 1)


@pytest.mark.usefixtures("small_hyperparams")
def test_a_sweep_with_the_filter_records_its_fit_and_scores_on_its_bars(tmp_path: Path) -> None:
    cfg = parse_config(small_raw_config(event_filter=FILTER, checks={"over_trading_ratio": 1000.0}))
    plan = plan_sweep(cfg)
    db_url = f"sqlite:///{tmp_path / 'results.db'}"
    defs = sweep_defs(plan, db_url, tmp_path)
    keys = Sweep.of(cfg).keys
    with dg.instance_for_test() as instance:
        report = materialize_sweep(defs, cfg, instance, cryptos=["SYNA"])
        assert report.ok and not report.failed_checks, (report.failed, report.failed_checks)
        part = str(partition_key("SYNA", plan.fold_ids[0]))
        dataset_meta = _metadata(instance, keys.fold_dataset, part)
        model_meta = _metadata(instance, keys.model("xgboost"), part)
    fit = dataset_meta["event_filter"].value
    assert fit["kind"] == "cusum" and fit["threshold"] == pytest.approx(2.0 * fit["sigma"], rel=1e-3)
    assert model_meta["event_filter"].value == fit
    started = model_meta["event/training_started"].value
    assert started["event_filter"] == "cusum" and started["event_filter_sigma"] == pytest.approx(
        fit["sigma"], rel=1e-3
    )
    assert started["n_train"] == dataset_meta["train_events"].value  # trained on the event bars only
    with get_engine(db_url).connect() as conn:
        results = pd.read_sql(sa.select(finetune_results), conn)
        baselines = pd.read_sql(sa.select(finetune_baselines), conn)
    events_test = dataset_meta["test_events"].value
    assert (results[results["crypto"] == "SYNA"]["n_trades_test"] <= events_test).all()
    random = baselines[(baselines["baseline_type"] == "random") & (baselines["crypto"] == "SYNA")]
    assert (random["n_trades_test"] <= events_test).all()
    assert cfg.run_id != parse_config(small_raw_config()).run_id


def _metadata(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return records[0].asset_materialization.metadata
