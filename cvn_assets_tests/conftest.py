"""Shared fixtures: real PostgreSQL and SQLite results databases, a real S3 endpoint, small sweep configs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from cvn_assets.config import DEFAULT_CONFIG_PATH, SweepConfig, parse_config
from cvn_assets.core.sweep_plan import SweepPlan, plan_sweep
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
    "models": {"xgboost": {"params": {"n_estimators": 15, "max_depth": 3, "learning_rate": 0.1}}},
    "costs_bps": [0, 10],
    "backtest": {"entry_threshold": 0.4, "slippage_bps": 1.0},
    "baselines": {"random_seeds": 8, "random_entry_prob": 0.05},
    "runtime": {"threads": 1},
}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches ./.cvn_home or a developer's CVN_DATABASE_URL."""
    monkeypatch.setenv("CVN_HOME", str(tmp_path / "cvn_home"))
    monkeypatch.delenv("CVN_DATABASE_URL", raising=False)
    monkeypatch.delenv("CVN_SWEEP_CONFIG", raising=False)


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
    server_url = request.getfixturevalue("postgres_server")
    name = f"cvn_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    get_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


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
