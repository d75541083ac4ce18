"""The embedded default's instance storage (`cvn_assets/instance_storage.py`): Dagster's SQLite storage with
its connections kept. Built from the shipped `dagster.yaml`, on real files: each file is connected to once
per process however many runs and events go through it, the files are those of Dagster's plain SQLite
storage (a home reads the same with either), and a forked child opens connections of its own."""

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from cvn_assets.instance_storage import ENGINES, OPEN_RUN_SHARDS, PooledSqliteStorage, instance_yaml

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = dg.StaticPartitionsDefinition([f"p{i}" for i in range(30)])


@dg.asset(partitions_def=PARTITIONS)
def numbers(context: dg.AssetExecutionContext) -> int:
    context.log.info(f"partition {context.partition_key}")
    return int(context.partition_key[1:])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A Dagster home with the shipped embedded dagster.yaml, as `cvn` copies it (DAGSTER_HOME unset)."""
    (tmp_path / "dagster.yaml").write_text(instance_yaml(REPO / "dagster.yaml", tmp_path))
    return tmp_path


@pytest.fixture
def connects() -> Iterator[Counter[str]]:
    """New DBAPI connections opened in this process, by SQLite file name."""
    counts: Counter[str] = Counter()

    def count(dbapi_connection: object, record: object) -> None:
        counts[Path(dbapi_connection.execute("PRAGMA database_list").fetchone()[2]).name] += 1  # type: ignore[attr-defined]

    sa.event.listen(sa.pool.Pool, "connect", count)
    yield counts
    sa.event.remove(sa.pool.Pool, "connect", count)


def _materialize(instance: dg.DagsterInstance, *partitions: str) -> None:
    for partition in partitions:
        assert dg.materialize([numbers], instance=instance, partition_key=partition).success


def _instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home))


def test_the_shipped_instance_keeps_one_connection_per_file(
    home: Path, connects: Counter[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "another_home"))  # the home's copy names its own files
    instance = _instance(home)
    storage = instance.get_ref().storage
    assert isinstance(storage, PooledSqliteStorage), "dagster.yaml must select the pooled SQLite storage"
    assert storage.base_dir == str(home.resolve())
    _materialize(instance, "p0")  # the files are created and connected to
    connects.clear()
    _materialize(instance, "p1", "p2", "p3", "p4", "p5")
    assert instance.fetch_materializations(numbers.key, limit=10).records
    # Each run shard is new (created, with a second connection to read its tables, then one kept); the index and runs files, written by every event and every
    # status change, are not connected to again. If an upgrade made Dagster's storage open connections
    # another way than the methods instance_storage.py overrides, each event would connect anew here.
    assert connects["index.db"] == 0 and connects["runs.db"] == 0, dict(connects)
    run_shards = [name for name in connects if name not in ("index.db", "runs.db")]
    assert len(run_shards) == 5 and all(connects[n] <= 2 for n in run_shards), dict(connects)
    with ENGINES.get(f"sqlite:///{home / 'history' / 'runs.db'}").connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_only_the_recent_run_shards_stay_open(home: Path) -> None:
    instance = _instance(home)
    _materialize(instance, *[f"p{i}" for i in range(OPEN_RUN_SHARDS + 4)])
    shards = [f for f in ENGINES.open_files() if f.startswith(str(home)) and "/history/runs/" in f]
    assert len(shards) == OPEN_RUN_SHARDS + 1  # the run shards, and the index
    assert len(instance.get_runs()) == OPEN_RUN_SHARDS + 4  # a closed shard is opened again when read
    assert all(len(instance.all_logs(run.run_id)) > 5 for run in instance.get_runs())


def test_a_home_reads_the_same_with_dagsters_plain_sqlite_storage(home: Path) -> None:
    instance = _instance(home)
    _materialize(instance, "p0", "p1")
    plain = yaml.safe_load((home / "dagster.yaml").read_text())
    del plain["storage"]  # Dagster's default: its SQLite storage under DAGSTER_HOME
    (home / "dagster.yaml").write_text(yaml.safe_dump(plain))
    with dg.DagsterInstance.from_config(str(home)) as dagsters:
        assert type(dagsters.get_ref().storage).__name__ == "DagsterSqliteStorage"
        assert len(dagsters.get_runs()) == 2
        _materialize(dagsters, "p2")
    materialized = instance.get_materialized_partitions(numbers.key)
    assert materialized == {"p0", "p1", "p2"} and len(instance.get_runs()) == 3


def _materialize_in_child(home: str, queue: multiprocessing.Queue) -> None:
    instance = dg.DagsterInstance.from_config(home)
    _materialize(instance, "p9")
    queue.put(ENGINES.open_files())


def test_a_forked_child_opens_its_own_connections(home: Path) -> None:
    instance = _instance(home)
    _materialize(instance, "p0")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_materialize_in_child, args=(str(home), queue))
    child.start()
    child_files = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert any(f.endswith("index.db") for f in child_files)
    _materialize(instance, "p1")  # the parent's connections still serve it
    assert instance.get_materialized_partitions(numbers.key) == {"p0", "p1", "p9"}


def test_wipe_closes_the_run_shards_before_deleting_them(home: Path) -> None:
    instance = _instance(home)
    _materialize(instance, "p0", "p1")
    instance.wipe()
    shards = [f for f in ENGINES.open_files() if f.startswith(str(home)) and "/history/runs/" in f]
    assert [Path(f).name for f in shards] == ["index.db"]  # emptied and opened again; the run shards closed
    _materialize(instance, "p2")
    assert [run.tags.get("dagster/partition") for run in instance.get_runs()] == ["p2"]
