"""Optuna HPO around any registered model: the search space comes only from the resolved ranges, it is
deterministic with a fixed seed, never reads the test split, prunes through the adapters' round hook, and
its study lives in the results database, where an interrupted search resumes."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pandas as pd
import pytest
import sqlalchemy as sa

from cvn_assets import steps
from cvn_assets.core.config import HpoSettings, parse_config
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.sweep_plan import plan_sweep
from cvn_assets.harness import hpo
from cvn_assets.harness.nodes.class_balance import balance_classes
from cvn_assets.harness.train import fit_adapter
from cvn_assets.hyperparams.model_params import ModelHyperparams, resolve_model
from cvn_assets.hyperparams.resolver import Resolver
from cvn_assets.store.engine import get_engine, upgrade
from cvn_assets_tests.conftest import hyperparameter_environ, small_raw_config

SEED, THREADS = 11, 1
SETTINGS = HpoSettings(
    mode="search", n_trials=6, sampler_startup_trials=2, pruner_startup_trials=1, pruner_warmup_rounds=5,
    report_every_rounds=5,
)  # fmt: skip


@pytest.fixture(scope="module")
def dataset() -> FoldDataset:
    plan = plan_sweep(parse_config(small_raw_config()))
    bars = steps.ohlcv(plan.config, "SYNA")
    return steps.cell_dataset(plan.config, "SYNA", plan.folds[1], bars)


def searched(model: str) -> ModelHyperparams:
    return resolve_model(
        Resolver(None, environ=hyperparameter_environ()), model, "1h", search=True, allow_fallback=False
    )


def _search(model: str, dataset: FoldDataset, url: str, name: str = "study", **settings: object):  # noqa: ANN202
    return hpo.search(
        model, dataset, searched(model), SETTINGS.model_copy(update=settings), storage_url=url, name=name,
        seed=SEED, threads=THREADS, class_balance="balanced",
    )  # fmt: skip


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).trials


def _sqlite(tmp_path: Path, name: str) -> str:
    url = f"sqlite:///{tmp_path / name}"
    upgrade(url)  # the results database: our tables, and Optuna's beside them
    return url


@pytest.mark.parametrize("model", ["xgboost", "lightgbm", "catboost", "logreg"])
def test_search_space_is_the_resolved_ranges_and_the_winner_is_what_is_recorded(
    model: str, dataset: FoldDataset, tmp_path: Path
) -> None:
    url = _sqlite(tmp_path, "r.db")
    hp = searched(model)
    params, summary = _search(model, dataset, url)
    trials = _trials(url, "study")
    assert summary.n_complete + summary.n_pruned == len(trials) == SETTINGS.n_trials
    for trial in trials:
        assert set(trial.params) == set(hp.ranges)
        for param, value in trial.params.items():
            low, high, _ = hp.ranges[param]
            assert low <= value <= high, (param, value)
    # The first trial is the resolved defaults; the winner overlays the defaults with the best trial.
    assert trials[0].params == {p: hp.values[p] for p in hp.ranges}
    best = next(t for t in trials if t.number == summary.trial_number)
    assert params == {**hp.values, **best.params} and summary.best_value == pytest.approx(best.value)
    assert summary.trial_id == best._trial_id and summary.library_time_sec <= summary.search_time_sec


def test_same_seed_same_search(dataset: FoldDataset, tmp_path: Path) -> None:
    runs = []
    for name in ("a.db", "b.db"):
        url = _sqlite(tmp_path, name)
        params, summary = _search("xgboost", dataset, url)
        runs.append(
            (params, summary.best_value, [(t.params, t.value, t.state) for t in _trials(url, "study")])
        )
    assert runs[0] == runs[1]


@pytest.mark.parametrize("model", ["xgboost", "lightgbm", "catboost"])
def test_each_boosting_adapter_reports_rounds_and_stops_when_told(model: str, dataset: FoldDataset) -> None:
    seen: list[tuple[int, float]] = []

    def hook(step: int, loss: float) -> bool:
        seen.append((step, loss))
        return step < 6  # "prune" at round 6

    params = {**searched(model).values, "n_estimators" if model != "catboost" else "iterations": 40}
    balance = balance_classes(dataset.train["label"].to_numpy(), "balanced")
    adapter, _ = fit_adapter(model, dataset, params, balance, seed=SEED, threads=THREADS, on_round=hook)
    assert [step for step, _ in seen] == list(range(7)) and all(0 < loss < 5 for _, loss in seen)
    assert adapter.n_estimators_final <= 8  # stopped there, not at 40 rounds


@pytest.mark.filterwarnings("ignore:Fixed parameter learning_rate:UserWarning")  # trial 0, deliberately
@pytest.mark.parametrize("model", ["xgboost", "lightgbm", "catboost"])
def test_the_median_pruner_stops_trials_behind_the_median(
    model: str, dataset: FoldDataset, tmp_path: Path
) -> None:
    # Trial 0 (the defaults, made to barely learn) stays near the prior; the range offers only learning rates
    # that overfit these noisy bars within a few rounds, so later trials fall behind it and get pruned.
    base = searched(model)
    hp = dataclasses.replace(
        base, values={**base.values, "learning_rate": 0.001}, ranges={"learning_rate": (0.5, 0.9, "linear")}
    )
    url = _sqlite(tmp_path, "r.db")

    def run(name: str, pruner: str):  # noqa: ANN202
        settings = SETTINGS.model_copy(update={"pruner": pruner, "n_trials": 5})
        return hpo.search(model, dataset, hp, settings, storage_url=url, name=name, seed=SEED, threads=THREADS,
                          class_balance="balanced")[1]  # fmt: skip

    pruned, unpruned = run("pruned", "median"), run("unpruned", "none")
    assert pruned.n_pruned > 0 and (unpruned.n_complete, unpruned.n_pruned) == (5, 0)
    for trial in _trials(url, "pruned"):
        if trial.state == optuna.trial.TrialState.PRUNED:  # reported every report_every_rounds rounds
            assert all(step % SETTINGS.report_every_rounds == 0 for step in trial.intermediate_values)


def test_the_search_never_reads_the_test_split(dataset: FoldDataset, tmp_path: Path) -> None:
    class NoTest(FoldDataset):
        def split(self, name: str) -> pd.DataFrame:
            assert name != "test", "the HPO search read the test split"
            return super().split(name)

    guarded = NoTest(**{f.name: getattr(dataset, f.name) for f in dataclasses.fields(dataset)})
    _search("xgboost", guarded, _sqlite(tmp_path, "r.db"))


def test_an_interrupted_study_resumes(
    dataset: FoldDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _sqlite(tmp_path, "r.db")
    real_fit, calls = hpo.fit_adapter, []

    def crashing_fit(*args: object, **kwargs: object):  # noqa: ANN202
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("the worker died")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(hpo, "fit_adapter", crashing_fit)
    with pytest.raises(MemoryError):
        _search("xgboost", dataset, url)
    before = _trials(url, "study")
    assert [t.number for t in before] == [0, 1]  # the finished trials were stored as they finished

    monkeypatch.setattr(hpo, "fit_adapter", real_fit)
    _, summary = _search("xgboost", dataset, url)
    after = _trials(url, "study")
    assert len(after) == SETTINGS.n_trials and len(calls) == 3  # resumed: the first two were not re-run
    assert [(t.params, t.value) for t in after[:2]] == [(t.params, t.value) for t in before]
    # Resuming a finished study runs nothing and gives the same winner.
    assert _search("xgboost", dataset, url)[1].trial_id == summary.trial_id
    assert len(_trials(url, "study")) == SETTINGS.n_trials


def test_study_is_stored_in_the_results_database_on_both_dialects(dataset: FoldDataset, db_url: str) -> None:
    _, summary = _search("logreg", dataset, db_url, name="run/logreg/SYNA/f001/x")
    with get_engine(db_url).connect() as conn:
        stored = conn.execute(
            sa.text(
                "select s.study_name, t.number from trials t join studies s on s.study_id = t.study_id "
                "where t.trial_id = :id"
            ),
            {"id": summary.trial_id},
        ).one()
    assert tuple(stored) == ("run/logreg/SYNA/f001/x", summary.trial_number)


def test_one_search_at_a_time_per_study_on_both_dialects(
    dataset: FoldDataset, db_url: str, tmp_path: Path
) -> None:
    """Two runs of one partition search its study at once: the second waits for the first, then resumes the
    finished study; the study holds exactly n_trials and both pick a clean search's winner."""
    name, waited = "run/xgboost/SYNA/f001/x", []

    def one_search() -> tuple[dict, int]:
        params, summary = hpo.search(
            "xgboost", dataset, searched("xgboost"), SETTINGS, storage_url=db_url, name=name, seed=SEED,
            threads=THREADS, class_balance="balanced", on_wait=waited.append,
        )  # fmt: skip
        return params, summary.trial_id

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = [f.result() for f in [pool.submit(one_search), pool.submit(one_search)]]
    assert len(waited) == 1 and "being searched by another run; waiting" in waited[0] and name in waited[0]
    trials = _trials(db_url, name)
    assert len(trials) == SETTINGS.n_trials and all(t.state in hpo.FINISHED for t in trials)
    assert first == second
    clean, _ = _search("xgboost", dataset, _sqlite(tmp_path, "clean.db"), name=name)
    assert first[0] == clean
