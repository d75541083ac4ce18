"""Optuna HPO around any registered model.

- The search space is built only from the resolved ranges (`SearchSpace.ranges`); every other
  parameter keeps its resolved default, and the defaults are the first trial of a new study.
- A trial fits on the train split and is scored on the validation split (log loss of the raw
  probabilities). The test split is never read here.
- The sampler is TPE, seeded. The median pruner stops a trial whose validation loss at a round is worse
  than the median of earlier trials at that round, through the adapters' one round hook; early stopping
  is the model's own `early_stopping_rounds` hyperparameter.
- The study lives in the results database (Optuna's RDB storage), named after everything it searches over,
  so re-running an interrupted partition resumes it, and a changed range or dataset starts a new one.
  The search itself runs on an in-memory copy and writes each trial to the stored study as it finishes, on
  a writer thread while the next trial trains: sampling and pruning read every earlier trial at every
  step, and doing those reads and writes against the database cost a quarter of the search time. A crash
  loses only the trials not yet written (the one running, and at most the one being written).
- One search at a time per study: `database_lock` holds the study's name for the whole search (a
  PostgreSQL session advisory lock, or a file lock beside a SQLite database), released when the search
  ends or its process dies. A second search of the same study waits, then resumes it: it finds the
  trials the first stored and runs only what is missing (none when the first finished), so two runs of
  one partition never run the study twice over or pick different winners.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

import optuna

from cvn_assets.core.config import HpoSettings
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.hashing import fingerprint
from cvn_assets.core.variants import variant_label
from cvn_assets.harness.contracts import Range, SearchSpace, SearchSummary
from cvn_assets.harness.metrics import log_loss
from cvn_assets.harness.nodes.class_balance import balance_classes
from cvn_assets.harness.train import fit_adapter
from cvn_assets.store.locks import database_lock

log = logging.getLogger(__name__)
XY_HASH_ATTR = "xy_hash"
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


_storage_lock = threading.Lock()


def storage_for(url: str) -> optuna.storages.RDBStorage:
    """One storage (and connection pool) per database per process. Optuna creates its tables on first use:
    under a lock, so two runs starting on a fresh database do not both create them."""
    with _storage_lock, database_lock(url, "optuna-schema"):
        return _storage(url)


@cache
def _storage(url: str) -> optuna.storages.RDBStorage:
    engine_kwargs: dict[str, Any] = (
        {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a stored study, as the trial_dynamics diagnostics read it."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, ...
    value: float | None  # validation log loss
    params: Mapping[str, Any]
    xy_hash: str | None  # the hash of the X/y it fit and was scored on (None: a trial stored before it was)
    curve: Mapping[int, float]  # validation loss by round, where the pruner was told


def stored_trials(storage_url: str, name: str) -> list[TrialRecord] | None:
    """Every trial of the study `name` in the results database, by number; None when there is no such study."""
    storage = storage_for(storage_url)
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return [
        TrialRecord(
            t.number,
            t.state.name,
            t.value,
            dict(t.params),
            t.user_attrs.get(XY_HASH_ATTR),
            dict(t.intermediate_values),
        )  # fmt: skip
        for t in sorted(storage.get_all_trials(study_id, deepcopy=False), key=lambda t: t.number)
    ]


def study_name(
    run_id: str, crypto: str, fold_id: str, hp: SearchSpace, data_hash: str, feature_set: str | None = None
) -> str:
    """Names what is searched: sweep, model and its feature set, partition, the resolved values and ranges,
    and the data."""
    inputs = fingerprint({"hp": hp.fingerprint, "data": data_hash}, length=12)
    return f"{run_id}/{variant_label(hp.model, feature_set)}/{crypto}/{fold_id}/{inputs}"


def suggest(trial: optuna.Trial, param: str, bounds: Range) -> Any:
    low, high, scale = bounds
    log = scale == "log"
    if isinstance(low, int) and isinstance(high, int):
        return trial.suggest_int(param, low, high, log=log)
    return trial.suggest_float(param, float(low), float(high), log=log)


def search(
    model_name: str,
    dataset: FoldDataset,
    hp: SearchSpace,
    settings: HpoSettings,
    *,
    storage_url: str,
    name: str,
    seed: int,
    threads: int,
    class_balance: str,
    on_wait: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], SearchSummary]:
    """Run (or resume) the study until it holds `settings.n_trials` finished trials or times out; return
    the winning parameters (defaults overlaid with the best trial's) and how they were found. The study is
    claimed for the whole search (`database_lock`): `on_wait` hears when another search holds it."""
    if not hp.ranges:
        raise ValueError(f"{model_name}: HPO search needs at least one resolved range; none are configured")
    started = time.perf_counter()
    storage = storage_for(storage_url)
    waiting = (
        f"HPO study {name} is being searched by another run; waiting for it to finish, then resuming it "
        "with the trials that run stored"
    )
    with database_lock(storage_url, f"study:{name}", lambda: (on_wait or log.warning)(waiting)):
        return _search(
            model_name, dataset, hp, settings, storage, name, seed, threads, class_balance, started
        )


def _search(
    model_name: str,
    dataset: FoldDataset,
    hp: SearchSpace,
    settings: HpoSettings,
    storage: optuna.storages.RDBStorage,
    name: str,
    seed: int,
    threads: int,
    class_balance: str,
    started: float,
) -> tuple[dict[str, Any], SearchSummary]:
    stored = optuna.create_study(storage=storage, study_name=name, direction="minimize", load_if_exists=True)
    stored_id = storage.get_study_id_from_name(name)
    done = [t for t in stored.get_trials(deepcopy=False) if t.state in FINISHED]
    # Each study draws its own sequence (folds explore different points), the same on every run of the
    # same study; a resumed one is seeded past the trials it already has, so it does not redraw them.
    sampler_seed = int(fingerprint([seed, name, len(done)], length=8), 16)
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(
            seed=sampler_seed, n_startup_trials=settings.sampler_startup_trials
        ),
        pruner=(
            optuna.pruners.MedianPruner(
                n_startup_trials=settings.pruner_startup_trials, n_warmup_steps=settings.pruner_warmup_rounds
            )
            if settings.pruner == "median"
            else optuna.pruners.NopPruner()
        ),
    )
    study.add_trials(done)
    stored_ids = {i: t._trial_id for i, t in enumerate(done)}  # in-memory trial number -> stored trial id
    if not done:
        study.enqueue_trial({p: hp.values[p] for p in hp.ranges if p in hp.values})

    writes: dict[int, Future[int]] = {}
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="optuna-writer")

    def persist(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state in FINISHED:
            writes[trial.number] = writer.submit(storage.create_new_trial, stored_id, template_trial=trial)

    _, y = dataset.xy("train")
    X_val, y_val = dataset.xy("validation")
    balance = balance_classes(y.to_numpy(), class_balance)
    library_sec = 0.0

    def objective(trial: optuna.Trial) -> float:
        nonlocal library_sec
        params = {**hp.values, **{p: suggest(trial, p, r) for p, r in hp.ranges.items()}}
        pruned, hook_sec = False, 0.0

        def on_round(step: int, loss: float) -> bool:
            nonlocal pruned, hook_sec
            if step % settings.report_every_rounds:
                return True
            reported = time.perf_counter()
            trial.report(loss, step)
            pruned = trial.should_prune()
            hook_sec += time.perf_counter() - reported
            return not pruned

        hook = on_round if settings.pruner != "none" else None
        # What this trial fits on and is scored on, hashed as it is read: the trial-invariance diagnostic
        # checks that every trial (and the final fit) saw the same captured X/y.
        trial.set_user_attr(XY_HASH_ATTR, dataset.xy_hash())
        adapter, fit_sec = fit_adapter(
            model_name, dataset, params, balance, seed=seed, threads=threads, on_round=hook
        )
        predict_started = time.perf_counter()
        proba = adapter.predict_proba(X_val)[:, 1]
        # The pruner's work runs inside the library's fit (in its callback) but is ours, not the library's.
        library_sec += fit_sec - hook_sec + time.perf_counter() - predict_started
        if pruned:
            raise optuna.TrialPruned()
        return log_loss(y_val.to_numpy(), proba)

    try:
        if len(done) < settings.n_trials:
            study.optimize(
                objective,
                n_trials=settings.n_trials - len(done),
                timeout=settings.timeout_s,
                callbacks=[persist],
            )
    finally:
        writer.shutdown(wait=True)  # even when a trial failed: what finished is stored, for a resume
    stored_ids |= {number: write.result() for number, write in writes.items()}
    trials = study.get_trials(deepcopy=False)
    best = study.best_trial
    summary = SearchSummary(
        study_name=name,
        trial_id=stored_ids[best.number],  # the stored id: joins a result row to Optuna's `trials` table
        trial_number=best.number,
        best_value=float(best.value),
        n_complete=sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials),
        n_pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
        search_time_sec=time.perf_counter() - started,
        library_time_sec=library_sec,
    )
    return {**hp.values, **best.params}, summary
