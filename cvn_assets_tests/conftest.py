"""Shared fixtures: real PostgreSQL and SQLite results databases, a real S3 endpoint, small sweep configs."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from cvn_assets.core.config import DEFAULT_CONFIG_PATH, SweepConfig, parse_config
from cvn_assets.core.sweep_plan import SweepPlan, plan_sweep
from cvn_assets.hyperparams.keys import default_key, range_keys
from cvn_assets.hyperparams.seeding import load_values, seed_values
from cvn_assets.store.engine import get_engine, upgrade
from cvn_assets_tests.services import ephemeral_postgres, s3_endpoint

SMALL_CONFIG: dict[str, Any] = {
    "name": "tiny",
    "timeframe": "1h",
    "universe": {"SYNA": {"kind": "synthetic"}, "SYNB": {"kind": "synthetic"}},
    "data": {"synthetic": {"seed": 3, "start": "2021-01-01T00:00:00", "n_bars": 24 * 170}},
    "features": {"windows": [6, 24]},
    "labels": {"horizon_bars": 12, "take_profit_atr": 2.0, "stop_loss_atr": 1.0, "atr_window": 12},
    "folds": {"train": "90d", "validation": "20d", "test": "20d", "max_folds": 2},
    "models": {"xgboost": {}},
    "costs_bps": [0, 10],
    "backtest": {"entry_threshold": 0.4, "slippage_bps": 1.0},
    "baselines": {"random_seeds": 8, "random_entry_prob": 0.05},
    "runtime": {"threads": 1},
}


# The tests' sweeps train small models. Their hyperparameters are set the way an operator may set them, as
# environment variables (which win over ftf_config): every key the values file lists, with smaller trees.
SMALL_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 15, "max_depth": 3, "learning_rate": 0.1},
    "lightgbm": {"n_estimators": 15, "num_leaves": 7, "learning_rate": 0.1},
    "catboost": {"iterations": 15, "depth": 3, "learning_rate": 0.1},
}
SMALL_RANGES: dict[str, dict[str, tuple[Any, Any, str]]] = {
    "xgboost": {"n_estimators": (10, 60, "linear"), "max_depth": (2, 4, "linear")},
    "lightgbm": {"n_estimators": (10, 60, "linear"), "num_leaves": (3, 15, "log")},
    "catboost": {"iterations": (10, 60, "linear"), "depth": (2, 4, "linear")},
}


def hyperparameter_environ(timeframe: str = "1h") -> dict[str, str]:
    env = {s.key: s.value for s in seed_values(sorted(load_values()), [timeframe])}
    for model, params in SMALL_HYPERPARAMS.items():
        env |= {default_key(model, timeframe, p): str(v) for p, v in params.items()}
    for model, ranges in SMALL_RANGES.items():
        for param, bounds in ranges.items():
            env |= dict(zip(range_keys(model, timeframe, param), map(str, bounds), strict=True))
    return env


@pytest.fixture
def small_hyperparams(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = hyperparameter_environ()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches ./.cvn_home or a developer's CVN_DATABASE_URL."""
    monkeypatch.setenv("CVN_HOME", str(tmp_path / "cvn_home"))
    monkeypatch.delenv("CVN_DATABASE_URL", raising=False)
    for key in (
        "CVN_SWEEPS_DIR",
        "CVN_SWEEP_FILES",
        "DAGSTER_HOME",
        "CVN_ARTIFACTS_BUCKET",
        "CVN_REPORTS_URL",
        "MLFLOW_TRACKING_URI",
    ):
        monkeypatch.delenv(key, raising=False)
    for key in [k for k in os.environ if k.startswith("CVN_HPO_")]:
        monkeypatch.delenv(key)
    # MLflow tracking is tested by test_tracking.py (the `mlflow_tracking` fixture) and the production
    # topology test; the other tests' runs, and the processes they start, would each import MLflow and open
    # a store for nothing.
    monkeypatch.setenv("CVN_MLFLOW", "off")


@pytest.fixture(scope="session")
def _migrated_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """An embedded-default MLflow store migrated once per session, without its Default experiment (MLflow
    recreates it with the artifact location of wherever a copy is opened): a new store takes seconds of
    migrations, and each tracking test has a home of its own."""
    from cvn_assets.defs.tracking import MlflowTracking

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowTracking(tracking_uri=f"sqlite:///{path}").client().search_experiments(max_results=1)
    source, copy = sqlite3.connect(path), sqlite3.connect(":memory:")
    try:
        source.backup(copy)
        copy.execute("DELETE FROM experiments WHERE experiment_id = 0")
        copy.commit()
        return copy.serialize()
    finally:
        source.close()
        copy.close()


@pytest.fixture
def mlflow_tracking(monkeypatch: pytest.MonkeyPatch, _migrated_mlflow_store: bytes) -> None:
    """Tracking as the environment configures it: the embedded default (a store under this test's
    CVN_HOME, already migrated) unless the test sets more."""
    monkeypatch.delenv("CVN_MLFLOW", raising=False)
    home = Path(os.environ["CVN_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "mlflow.db").write_bytes(_migrated_mlflow_store)


def small_raw_config(**overrides: Any) -> dict[str, Any]:
    raw = yaml.safe_load(yaml.safe_dump(SMALL_CONFIG))  # deep copy
    raw.update(overrides)
    return raw


@pytest.fixture
def small_config() -> SweepConfig:
    return parse_config(small_raw_config())


@pytest.fixture
def small_plan(small_config: SweepConfig) -> SweepPlan:
    return plan_sweep(small_config)


@pytest.fixture
def default_raw_config() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with ephemeral_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated results database on each dialect."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'results.db'}"
        upgrade(url)
        yield url
        return
    with fresh_database(request.getfixturevalue("postgres_server")) as url:
        upgrade(url)
        yield url
        get_engine(url).dispose()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the session's PostgreSQL server, dropped afterwards."""
    name = f"cvn_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def dagster_instance(request: pytest.FixtureRequest) -> Iterator[dg.DagsterInstance]:
    """A real Dagster instance with its own storage on SQLite or on the session's PostgreSQL."""
    if request.param == "sqlite":
        with dg.instance_for_test() as instance:
            yield instance
        return
    with fresh_database(request.getfixturevalue("postgres_server")) as url:
        dagster_url = url.replace("+psycopg://", "+psycopg2://")  # dagster-postgres speaks psycopg2
        overrides = {"storage": {"postgres": {"postgres_url": dagster_url}}}
        with dg.instance_for_test(overrides=overrides) as instance:
            yield instance


@pytest.fixture
def engine(db_url: str) -> sa.Engine:
    return get_engine(db_url)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with s3_endpoint() as url:
        yield url
