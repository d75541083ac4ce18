"""The first runs of a sweep on a fresh results database all migrate it at once: each upgrade takes the
migration lock, so every one of them succeeds and the database ends at head, on both dialects."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from cvn_assets.store.engine import VERSION_TABLE, alembic_config
from cvn_assets_tests.conftest import fresh_database

N_PROCESSES = 4
# Each process imports first, then waits for the same instant, so the upgrades really start together.
UPGRADE = """
import sys, time
from cvn_assets.store.engine import upgrade
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
upgrade(sys.argv[1])
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A results database nobody has migrated yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results.db'}"
        return
    with fresh_database(request.getfixturevalue("postgres_server")) as url:
        yield url


def test_concurrent_first_upgrades_all_succeed(fresh_url: str) -> None:
    start = time.time() + 8  # past every process's imports (~2 s each on two busy cores)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADE, fresh_url, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(N_PROCESSES)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in processes]
    failed = [out for p, out in zip(processes, outputs, strict=True) if p.returncode != 0]
    assert not failed, failed[0][-2000:]
    head = ScriptDirectory.from_config(alembic_config(fresh_url)).get_current_head()
    engine = sa.create_engine(fresh_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(sa.text(f"select version_num from {VERSION_TABLE}")).scalars().all()
    finally:
        engine.dispose()
    assert versions == [head]
