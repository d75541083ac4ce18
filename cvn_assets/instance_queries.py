"""Counting the Dagster instance's SQL round trips inside a run worker (for `bench/orchestration_overhead.py`).

With CVN_INSTANCE_QUERY_LOG set to a file, each warm run worker (`warm_start.py`) counts the statements
it sends to the instance's storage (reads, and writes: mostly event-log inserts) and appends one JSON
line per run to that file. Statements to the results store and Optuna's studies are not counted. Off by
default: the count costs a callback per statement.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

QUERY_LOG_ENV = "CVN_INSTANCE_QUERY_LOG"
WRITES = {"INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT"}


def instance_database(url: sa.URL, dagster_home: str) -> bool:
    """Whether an engine's URL is the instance's storage: a SQLite file under DAGSTER_HOME, or a server
    database other than the results store's."""
    if url.get_backend_name() == "sqlite":
        return bool(url.database) and str(Path(url.database).resolve()).startswith(dagster_home)
    results = os.environ.get("CVN_DATABASE_URL")
    return results is None or sa.make_url(results).database != url.database


def counting(run_id: str) -> Callable[[], None]:
    """Start counting this process's instance statements; returns the function that appends the counts."""
    path = os.environ[QUERY_LOG_ENV]
    home = str(Path(os.environ.get("DAGSTER_HOME", "/nonexistent")).resolve())
    counts: Counter[str] = Counter()
    instance_engines: dict[int, bool] = {}

    def count(conn: sa.Connection, cursor: object, statement: str, *_: object) -> None:
        engine = conn.engine
        if id(engine) not in instance_engines:
            instance_engines[id(engine)] = instance_database(engine.url, home)
        if instance_engines[id(engine)]:
            verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
            counts["writes" if verb in WRITES else "reads"] += 1

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)

    def flush() -> None:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
        with open(path, "a") as out:
            out.write(json.dumps({"run_id": run_id, **counts}) + "\n")

    return flush
