"""One function per asset (and the sweep's variant selection): what the Dagster assets wire together.

The Dagster layer calls exactly these, and so does `bench/orchestration_overhead.py` in a plain loop,
which is how the orchestration overhead is measured on identical work.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from cvn_assets.core.backtest import Economics, cost_per_side
from cvn_assets.core.baselines import (
    BASELINE_TYPES,
    baseline_seed_key,
    buy_and_hold,
    matched_seed_key,
    naive,
    random_entries,
    random_matched,
    window_paths,
)
from cvn_assets.core.config import SweepConfig
from cvn_assets.core.datasets import FeatureFrame, FoldDataset, build_fold_dataset, fold_span, label_features
from cvn_assets.core.economics import entry_signal, variant_economics
from cvn_assets.core.equity_curves import CellEquity, cell_equity
from cvn_assets.core.errors import ConfigError, DataCoverageError
from cvn_assets.core.event_filter import cusum_events, fit_summary
from cvn_assets.core.folds import Fold, current_fold_id
from cvn_assets.core.hashing import canonical_json
from cvn_assets.core.labels import triple_barrier_labels
from cvn_assets.core.loaders import load_ohlcv
from cvn_assets.core.random_trades import TradePaths
from cvn_assets.core.timeframes import bar_delta, bars_per_year
from cvn_assets.core.variants import variant_label
from cvn_assets.core.working_set import FeatureLayout
from cvn_assets.diagnostics.registry import DiagnosticDeclarationError, get_diagnostic, registered_diagnostics
from cvn_assets.diagnostics.verdicts import Finding
from cvn_assets.features.registry import get_feature_set, registered_feature_sets
from cvn_assets.harness.contracts import SearchSummary
from cvn_assets.harness.ensemble import combine_one
from cvn_assets.harness.hpo import search, study_name
from cvn_assets.harness.predictions import VariantPredictions, predict_splits
from cvn_assets.harness.registry import registered_ensembles, registered_models
from cvn_assets.harness.train import TrainedArtifact, train_one
from cvn_assets.hyperparams.model_params import Coverage, ModelHyperparams, coverage, resolve_sweep
from cvn_assets.hyperparams.resolver import Resolver
from cvn_assets.store.schema import COST_BASIS_BACKTESTED, MATCHED_PREFIX
from cvn_assets.version import code_version

SPLIT_SUFFIX = {"validation": "_val", "test": "_test"}
Row = dict[str, Any]


def default_threads(cfg: SweepConfig) -> int:
    """`runtime.threads`, or every core with `auto` outside Dagster (where the instance splits them)."""
    return cfg.runtime.threads if isinstance(cfg.runtime.threads, int) else os.cpu_count() or 1


def ohlcv(cfg: SweepConfig, crypto: str) -> pd.DataFrame:
    return load_ohlcv(cfg, crypto)


def _require_cover(crypto: str, fold: Fold, bars: pd.DataFrame, end: pd.Timestamp, step: pd.Timedelta,
                   what: str, fix: str) -> None:  # fmt: skip
    if bars.index[0] > fold.train_start or bars.index[-1] + step < end:
        raise DataCoverageError(
            f"{what} ({bars.index[0]} to {bars.index[-1]}) do not cover fold {fold.fold_id} of {crypto} "
            f"({fold.train_start} to {end}); {fix}"
        )


def feature_set_names(cfg: SweepConfig) -> list[str]:
    """The configured feature sets; a name no plugin registers, a parameter it does not have, or a crypto it
    requires that the universe lacks fails naming the config key."""
    registered = registered_feature_sets()
    for name, settings in cfg.feature_sets.items():
        if name not in registered:
            raise ConfigError(
                f"feature_sets.{name}", f"no feature set registered as '{name}'; registered: {registered}"
            )
        spec = get_feature_set(name)
        spec.resolve_params(settings.params, cfg.features.windows)
        for crypto in cfg.universe:
            absent = [c for c in spec.required_for(crypto) if c not in cfg.universe]
            if absent:
                raise ConfigError(
                    f"feature_sets.{name}",
                    f"{crypto} needs the bars of {absent}, which are not in the universe; add "
                    f"{absent[0]} to universe or leave {name} out of feature_sets",
                )
    return list(cfg.feature_sets)


def feature_set_params(cfg: SweepConfig, name: str) -> dict[str, Any]:
    return get_feature_set(name).resolve_params(cfg.feature_sets[name].params, cfg.features.windows)


def required_cryptos(cfg: SweepConfig, name: str, crypto: str) -> tuple[str, ...]:
    """The other cryptos whose bars feature set `name` reads for `crypto`."""
    return get_feature_set(name).required_for(crypto)


def feature_layout(cfg: SweepConfig, crypto: str) -> FeatureLayout:
    """What the sweep's feature sets load and train on for `crypto`: the working-set estimate's input."""
    columns = {
        name: len(get_feature_set(name).columns(feature_set_params(cfg, name), crypto))
        for name in feature_set_names(cfg)
    }
    others = {c for name in columns for c in required_cryptos(cfg, name, crypto)}
    pairs = tuple((m, n) for name, n in columns.items() for m in cfg.feature_set_models(name))
    return FeatureLayout(1 + len(others), sum(columns.values()), pairs)


def features(
    cfg: SweepConfig,
    feature_set: str,
    crypto: str,
    fold: Fold,
    bars: pd.DataFrame,
    others: Mapping[str, pd.DataFrame] | None = None,
) -> FeatureFrame:
    """One feature set's features of `crypto` over the fold's span, from its whole series (and the series
    of the cryptos the set requires, which must cover the fold too)."""
    others = dict(others or {})
    step = bar_delta(cfg.timeframe)
    spec = get_feature_set(feature_set)
    for other in spec.required_for(crypto):
        if other not in others:
            raise DataCoverageError(
                f"{crypto} fold {fold.fold_id}: feature set '{feature_set}' needs the bars of {other}; "
                f"materialize ohlcv[{other}] first"
            )
        _require_cover(crypto, fold, others[other], fold.test_end, step, f"{other}'s bars for {feature_set}",
                       f"re-materialize ohlcv[{other}] with data that covers it")  # fmt: skip
    params = feature_set_params(cfg, feature_set)
    frame = fold_span(spec.run(crypto, bars, params, others), fold)
    # Past its own warm-up every feature must be defined: a NaN there means a required series has no bar
    # (or no warmed-up feature) yet, and the fold would silently lose rows for every variant.
    warmed = frame.loc[frame.index >= bars.index[min(spec.warmup(params), len(bars) - 1)]]
    undefined = warmed.isna().any(axis=1)
    if undefined.any():
        at = warmed.index[int(np.argmax(undefined.to_numpy()))]
        raise DataCoverageError(
            f"{crypto} fold {fold.fold_id}: feature set '{feature_set}' is undefined at {at} (columns "
            f"{sorted(warmed.columns[warmed.loc[at].isna()])[:3]}...): the bars of "
            f"{list(spec.required_for(crypto)) or [crypto]} do not cover the fold with their warm-up"
        )
    return FeatureFrame(crypto, feature_set, frame, spec.feature_hash(params))


def fold_dataset(
    cfg: SweepConfig, crypto: str, fold: Fold, bars: pd.DataFrame, frames: Sequence[FeatureFrame]
) -> FoldDataset:
    """Labels over the crypto's whole series, every feature set's columns beside them, split into the
    fold's windows: the one basis of the cell's variants and baselines."""
    needed_end = fold.test_end + cfg.purge_bars * bar_delta(cfg.timeframe)
    _require_cover(crypto, fold, bars, needed_end, bar_delta(cfg.timeframe), f"{crypto}: its bars",
                   f"re-materialize ohlcv[{crypto}] with data that covers it")  # fmt: skip
    labels = triple_barrier_labels(
        bars,
        horizon=cfg.labels.horizon_bars,
        take_profit_atr=cfg.labels.take_profit_atr,
        stop_loss_atr=cfg.labels.stop_loss_atr,
        atr_window=cfg.labels.atr_window,
    )
    if not cfg.event_filter.enabled:
        return build_fold_dataset(label_features(crypto, bars, frames, labels, fold), fold)
    settings = cfg.event_filter
    events = cusum_events(bars["close"], k=settings.k, vol_window=settings.vol_window)
    labeled = label_features(crypto, bars, frames, labels, fold, events)
    train = labeled.frame.index[
        (labeled.frame.index >= fold.train_start) & (labeled.frame.index < fold.train_end)
    ]
    fit = fit_summary(bars["close"], events, train, k=settings.k, vol_window=settings.vol_window)
    return build_fold_dataset(labeled, fold, fit)


def cell_dataset(
    cfg: SweepConfig, crypto: str, fold: Fold, bars: Mapping[str, pd.DataFrame] | pd.DataFrame
) -> FoldDataset:
    """Every feature set of the sweep and the fold dataset of one cell, as the assets compute them: for
    plain loops (benches, tests). `bars`: the crypto's bars, or bars by crypto when a set requires others."""
    by_crypto = dict(bars) if isinstance(bars, Mapping) else {crypto: bars}
    frames = [
        features(cfg, name, crypto, fold, by_crypto[crypto],
                 {c: by_crypto[c] for c in required_cryptos(cfg, name, crypto) if c in by_crypto})
        for name in feature_set_names(cfg)
    ]  # fmt: skip
    return fold_dataset(cfg, crypto, fold, by_crypto[crypto], frames)


def model_names(cfg: SweepConfig) -> list[str]:
    """The configured models; a name no plugin registers fails naming the config key."""
    registered = registered_models()
    for name in cfg.models:
        if name not in registered:
            raise ConfigError(f"models.{name}", f"no model registered as '{name}'; registered: {registered}")
    return list(cfg.models)


def ensemble_names(cfg: SweepConfig) -> list[str]:
    """Every registered ensemble whose base models are all configured, unless the config disables it.
    An ensemble named in the config must exist and have its base models."""
    registered = registered_ensembles()
    for name, settings in cfg.ensembles.items():
        if name not in registered:
            raise ConfigError(
                f"ensembles.{name}", f"no ensemble registered as '{name}'; registered: {sorted(registered)}"
            )
        missing = [m for m in registered[name].base_models if m not in cfg.models]
        if settings.enabled and missing:
            raise ConfigError(
                f"ensembles.{name}", f"its base models {missing} are not configured under models"
            )
    return [
        name
        for name, spec in registered.items()
        if all(m in cfg.models for m in spec.base_models)
        and (name not in cfg.ensembles or cfg.ensembles[name].enabled)
    ]


def feature_set_ensembles(cfg: SweepConfig, feature_set: str) -> list[str]:
    """The active ensembles whose base models all train on `feature_set`."""
    models = set(cfg.feature_set_models(feature_set))
    registered = registered_ensembles()
    return [e for e in ensemble_names(cfg) if set(registered[e].base_models) <= models]


@dataclass(frozen=True)
class Variant:
    """A model or an ensemble on one feature set: one result row per cell and cost."""

    name: str
    feature_set: str
    is_ensemble: bool

    @property
    def label(self) -> str:
        return variant_label(self.name, self.feature_set)


def variants(cfg: SweepConfig) -> list[Variant]:
    """Every variant of the sweep: each feature set's models, then each feature set's ensembles."""
    sets = feature_set_names(cfg)
    model_names(cfg)
    return [Variant(m, fs, False) for fs in sets for m in cfg.feature_set_models(fs)] + [
        Variant(e, fs, True) for fs in sets for e in feature_set_ensembles(cfg, fs)
    ]


def diagnostic_names(cfg: SweepConfig) -> list[str]:
    """The diagnostics auditing the sweep (default: every registered one). A name no plugin registers or a
    parameter it lacks fails naming the config key; a diagnostic whose declaration the registry refused (it
    asks for an input it did not declare) fails naming the diagnostic and the input."""
    registered = registered_diagnostics()
    chosen = cfg.diagnostics.run
    names = registered if chosen is None else list(chosen)
    for name in names:
        if name not in registered:
            raise ConfigError(
                f"diagnostics.run.{name}", f"no diagnostic registered as '{name}'; registered: {registered}"
            )
        spec = get_diagnostic(name)
        if spec.problem:
            raise DiagnosticDeclarationError(f"{spec.problem} (sweep {cfg.name})")
        spec.resolve_params((chosen or {}).get(name, {}))
    return names


def diagnostic_params(cfg: SweepConfig, name: str) -> dict[str, Any]:
    return get_diagnostic(name).resolve_params((cfg.diagnostics.run or {}).get(name, {}))


def diagnose(cfg: SweepConfig, name: str, available: Mapping[str, Any]) -> Finding:
    """One diagnostic on the inputs it declared (taken from `available`) and its resolved parameters."""
    return get_diagnostic(name).run({**available, "params": diagnostic_params(cfg, name)})


def hyperparameters(
    cfg: SweepConfig, resolver: Resolver, *, allow_fallback: bool | None = None
) -> dict[str, ModelHyperparams]:
    """The resolved hyperparameters of every configured model and active ensemble (missing keys listed,
    for the coverage check)."""
    model_names(cfg)
    return resolve_sweep(resolver, cfg, ensemble_names(cfg), allow_fallback=allow_fallback)


def hyperparameter_coverage(cfg: SweepConfig, resolver: Resolver) -> tuple[Coverage, str]:
    """The share of required keys set, never counting a fallback, and its one-line description: what the
    `hyperparameters_complete` check and `cvn hp audit` report."""
    cover = coverage(hyperparameters(cfg, resolver, allow_fallback=False))
    return cover, cover.describe([*cfg.models, *ensemble_names(cfg)])


def train_model(
    cfg: SweepConfig,
    model_name: str,
    dataset: FoldDataset,
    hp: ModelHyperparams,
    storage_url: str | None = None,
    meta: ModelHyperparams | None = None,
    threads: int | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> TrainedArtifact:
    """Fixed mode trains with the resolved defaults; search mode runs (or resumes) the Optuna study stored
    in the results database at `storage_url`, then trains its winner through the same `train_one`. `meta`
    holds the meta-labeler's hyperparameters when harness.meta_labeling is enabled. `on_wait` hears when
    another run is searching the same study (this one waits for it)."""
    hp.require_complete()
    if meta is not None:
        meta.require_complete()
    params, found = hp.values, None
    if hp.search:
        if storage_url is None:
            raise ValueError(f"{model_name}: an HPO search needs the results database to store its study")
        params, found = search(
            model_name,
            dataset,
            hp,
            cfg.hpo,
            storage_url=storage_url,
            name=study_name(
                cfg.run_id,
                dataset.crypto,
                dataset.fold.windows_id,
                hp,
                dataset.data_hash,
                dataset.feature_set,
            ),
            seed=cfg.seed,
            threads=threads or default_threads(cfg),
            class_balance=cfg.harness.class_balance,
            on_wait=on_wait,
        )
    return retrain_model(cfg, model_name, dataset, params, meta, threads, found)


def retrain_model(
    cfg: SweepConfig,
    model_name: str,
    dataset: FoldDataset,
    params: Mapping[str, Any],
    meta: ModelHyperparams | None = None,
    threads: int | None = None,
    search: SearchSummary | None = None,
) -> TrainedArtifact:
    """Train with given parameters (a search's winner, the resolved defaults, or a stored row's: what the
    reproducibility anchor retrains with) through the one harness path."""
    return train_one(
        model_name,
        dataset,
        params,
        harness=cfg.harness,
        threshold=cfg.backtest.entry_threshold,
        seed=cfg.seed,
        threads=threads or default_threads(cfg),
        code_version=code_version(),
        search=search,
        meta_params=meta.values if meta is not None else None,
    )


def ensemble(
    cfg: SweepConfig,
    name: str,
    dataset: FoldDataset,
    base: dict[str, VariantPredictions],
    hp: ModelHyperparams,
    threads: int | None = None,
) -> VariantPredictions:
    hp.require_complete()
    return combine_one(
        name,
        dataset,
        base,
        hp.values,
        harness=cfg.harness,
        threshold=cfg.backtest.entry_threshold,
        seed=cfg.seed,
        threads=threads or default_threads(cfg),
    )


def predictions(artifact: TrainedArtifact, dataset: FoldDataset) -> VariantPredictions:
    return predict_splits(artifact, dataset)


def _partition_columns(
    cfg: SweepConfig, dataset: FoldDataset, cost_bps: int, dagster_run_id: str | None
) -> Row:
    return {
        "run_id": cfg.run_id,
        "strategy": cfg.strategy,
        "crypto": dataset.crypto,
        "fold_id": dataset.fold.fold_id,
        "cost_bps": cost_bps,
        "fee_bps": cost_bps,  # the cost level is the fee; slippage comes on top, on each side
        "slippage_bps": cfg.backtest.slippage_bps,
        "data_hash": dataset.data_hash,
        "cost_basis": COST_BASIS_BACKTESTED,
        "test_start": dataset.fold.test_start.to_pydatetime(),
        "test_end": dataset.fold.test_end.to_pydatetime(),
        "code_version": code_version(),
        "dagster_run_id": dagster_run_id,
        "created_at": datetime.now(UTC),
    }


def partition_scope(cfg: SweepConfig, crypto: str, fold_id: str, cost_bps: int) -> Row:
    """The key columns a partition's write owns (all rows of one crypto x fold x cost in this sweep); a
    long-form fold id (a partition added before the short form) writes under its short form."""
    return {
        "run_id": cfg.run_id,
        "strategy": cfg.strategy,
        "crypto": crypto,
        "fold_id": current_fold_id(fold_id),
        "cost_bps": cost_bps,
    }


def trading_basis(cfg: SweepConfig, cost_bps: int) -> tuple[float, float]:
    """(cost per side, bars per year): the one basis every variant and every baseline is scored on."""
    return cost_per_side(cost_bps, cfg.backtest.slippage_bps), bars_per_year(cfg.timeframe)


def _economics_columns(by_split: dict[str, Economics], prefix: str = "") -> Row:
    return {
        f"{prefix}{metric}{SPLIT_SUFFIX[split]}": value
        for split, econ in by_split.items()
        for metric, value in econ.as_dict().items()
    }


def result_rows(
    cfg: SweepConfig,
    dataset: FoldDataset,
    variants: list[VariantPredictions],
    cost_bps: int,
    dagster_run_id: str | None = None,
) -> list[Row]:
    """One finetune_results row per variant at this cost level."""
    cost, per_year = trading_basis(cfg, cost_bps)
    # What each row's trade would do: the same for every variant's random_matched, so computed once.
    paths = {split: window_paths(dataset.split(split), cost) for split in SPLIT_SUFFIX}
    rows: list[Row] = []
    for v in variants:
        if v.data_hash != dataset.data_hash:
            raise ValueError(
                f"predictions of {v.variant} belong to data {v.data_hash}, not {dataset.data_hash}"
            )
        row = _partition_columns(cfg, dataset, cost_bps, dagster_run_id)
        econ: dict[str, Economics] = {}
        for split, metrics in (("validation", v.val_metrics), ("test", v.test_metrics)):
            frame = dataset.split(split)
            proba = getattr(v, split)
            suffix = SPLIT_SUFFIX[split]
            row.update({f"{name}{suffix}": value for name, value in metrics.as_dict().items()})
            row[f"threshold_buy{suffix}"] = v.threshold
            econ[split] = variant_economics(frame, proba, v.threshold, cost, per_year)
        row.update(_economics_columns(econ))
        matched = _matched_baselines(cfg, dataset, econ, paths, per_year)
        row.update(_economics_columns(matched, MATCHED_PREFIX))
        row["n_trades_val"], row["n_trades_test"] = int(row["n_trades_val"]), int(row["n_trades_test"])
        row.update(
            variant=v.variant,
            feature_set=v.feature_set,
            model_hyperparams=canonical_json(v.hyperparams) if v.hyperparams else None,
            feature_hash=v.feature_hash,
            optuna_trial_id=v.optuna_trial_id,
            optuna_study=v.optuna_study,
            optuna_trial_number=v.optuna_trial_number,
        )
        rows.append(row)
    return rows


def _matched_baselines(
    cfg: SweepConfig,
    dataset: FoldDataset,
    variant: dict[str, Economics],
    paths: dict[str, TradePaths],
    per_year: float,
) -> dict[str, Economics]:
    """`random_matched` per split: luck with the variant's own trade count in that split."""
    return {
        split: random_matched(
            paths[split],
            per_year,
            n_trades=int(econ.n_trades),
            n_seeds=cfg.baselines.random_seeds,
            seed_key=matched_seed_key(
                cfg.seed, dataset.crypto, dataset.fold.index, split, int(econ.n_trades)
            ),
        )
        for split, econ in variant.items()
    }


def baseline_rows(
    cfg: SweepConfig, dataset: FoldDataset, cost_bps: int, dagster_run_id: str | None = None
) -> list[Row]:
    """One finetune_baselines row per baseline type at this cost level, on the dataset's own windows."""
    cost, per_year = trading_basis(cfg, cost_bps)
    rows: list[Row] = []
    for kind in BASELINE_TYPES:
        econ: dict[str, Economics] = {}
        for split in ("validation", "test"):
            frame = dataset.split(split)
            if kind == "buy_and_hold":
                econ[split] = buy_and_hold(frame, cost, per_year)
            elif kind == "naive":
                econ[split] = naive(frame, cost, per_year)
            else:
                econ[split] = random_entries(
                    frame,
                    cost,
                    per_year,
                    entry_prob=cfg.baselines.random_entry_prob,
                    n_seeds=cfg.baselines.random_seeds,
                    seed_key=baseline_seed_key(cfg.seed, dataset.crypto, dataset.fold.index, split),
                )
        rows.append(
            {
                **_partition_columns(cfg, dataset, cost_bps, dagster_run_id),
                "baseline_type": kind,
                **_economics_columns(econ),
            }
        )
    return rows


def report_cell(cfg: SweepConfig, dataset: FoldDataset, variants: list[VariantPredictions]) -> CellEquity:
    """The report's equity curves of one cell: its OOS split at the middle cost level, every variant
    entering where its probability clears its threshold, beside the baselines drawn as their rows are."""
    cost_bps = sorted(cfg.costs_bps)[len(cfg.costs_bps) // 2]
    cost, _ = trading_basis(cfg, cost_bps)
    split = dataset.split("test")
    curves = cell_equity(
        split,
        {v.label: entry_signal(split, v.test, v.threshold) for v in variants},
        cost,
        entry_prob=cfg.baselines.random_entry_prob,
        n_seeds=cfg.baselines.random_seeds,
        seed_key=baseline_seed_key(cfg.seed, dataset.crypto, dataset.fold.index, "test"),
    )
    return CellEquity(f"{dataset.crypto} {dataset.fold.fold_id}, OOS at {cost_bps} bps", curves)
