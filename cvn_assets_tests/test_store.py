"""The results store on SQLite and a real PostgreSQL: migrations, constraints, idempotent partition writes."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from cvn_assets.core.config import MAX_BPS, STRATEGY_MAX_LENGTH
from cvn_assets.store import engine as store_engine
from cvn_assets.store.audits import missing_matched_baselines
from cvn_assets.store.engine import VERSION_TABLE, alembic_config, upgrade
from cvn_assets.store.reports import results_frame
from cvn_assets.store.schema import MATCHED_COLUMNS, finetune_baselines, finetune_results, metadata
from cvn_assets.store.writes import write_baselines, write_results
from cvn_assets_tests.store_rows import RUN, baseline_row, result_row, scope


def _rows(engine: sa.Engine, table: sa.Table) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.id))]


def test_migrations_reach_head_and_match_the_schema(db_url: str, engine: sa.Engine) -> None:
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"select version_num from {VERSION_TABLE}")).scalar() == head
    inspector = sa.inspect(engine)
    for table in metadata.tables.values():
        live = {c["name"] for c in inspector.get_columns(table.name)}
        assert live == {c.name for c in table.columns}, table.name
        uniques = [tuple(u["column_names"]) for u in inspector.get_unique_constraints(table.name)]
        for constraint in (c for c in table.constraints if isinstance(c, sa.UniqueConstraint)):
            assert tuple(constraint.columns.keys()) in uniques, (table.name, constraint.name)
        assert inspector.get_pk_constraint(table.name)["constrained_columns"] == [
            c.name for c in table.primary_key
        ]
    cost_col = next(c for c in inspector.get_columns("finetune_baselines") if c["name"] == "cost_bps")
    assert not cost_col["nullable"] and isinstance(cost_col["type"], sa.Integer)


def test_downgrade_and_upgrade_round_trip(db_url: str, engine: sa.Engine) -> None:
    config = alembic_config(db_url)
    command.downgrade(config, "base")
    assert "finetune_results" not in sa.inspect(engine).get_table_names()
    command.upgrade(config, "head")
    assert {"finetune_results", "finetune_baselines"} <= set(sa.inspect(engine).get_table_names())
    upgrade(db_url)  # idempotent


def test_writing_a_partition_three_times_leaves_the_same_rows(engine: sa.Engine) -> None:
    rows = [result_row("xgboost"), result_row("logreg")]
    for _ in range(3):
        write_results(engine, scope(), rows)
    stored = _rows(engine, finetune_results)
    assert len(stored) == 2
    write_results(engine, scope(), [result_row("xgboost", value=0.9), result_row("logreg")])
    stored = _rows(engine, finetune_results)
    assert len(stored) == 2 and {r["variant"]: r["auc_buy_test"] for r in stored}["xgboost"] == pytest.approx(
        0.9
    )


def test_rewrite_drops_variants_the_partition_no_longer_has_and_leaves_other_partitions(
    engine: sa.Engine,
) -> None:
    write_results(engine, scope(), [result_row("xgboost"), result_row("logreg")])
    write_results(engine, scope(cost_bps=25), [result_row("xgboost", cost_bps=25)])
    write_results(engine, scope(), [result_row("xgboost")])
    assert sorted((r["variant"], r["cost_bps"]) for r in _rows(engine, finetune_results)) == [
        ("xgboost", 10),
        ("xgboost", 25),
    ]


def test_baseline_cost_constraints(engine: sa.Engine) -> None:
    write_baselines(engine, scope(), [baseline_row(k) for k in ("buy_and_hold", "random", "naive")])
    assert len(_rows(engine, finetune_baselines)) == 3
    with pytest.raises(sa.exc.IntegrityError):
        write_baselines(engine, scope(cost_bps=-5), [baseline_row("naive", cost_bps=-5)])
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(
            sa.insert(finetune_baselines).values(
                {**baseline_row("naive"), "cost_bps": None, "fold_id": "f009"}
            )
        )
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):  # the unique key
        conn.execute(sa.insert(finetune_baselines).values(baseline_row("naive")))


def test_a_failed_write_changes_nothing(engine: sa.Engine) -> None:
    write_results(engine, scope(), [result_row("xgboost", value=0.5)])
    broken = {**result_row("logreg"), "cost_basis": None}  # NOT NULL violation inside the same transaction
    with pytest.raises(sa.exc.IntegrityError):
        write_results(engine, scope(), [result_row("xgboost", value=0.9), broken])
    stored = _rows(engine, finetune_results)
    assert len(stored) == 1 and stored[0]["auc_buy_test"] == pytest.approx(0.5)


def test_rows_outside_the_partition_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="does not belong to partition"):
        write_results(engine, scope(), [result_row("xgboost", fold_id="f001")])
    assert _rows(engine, finetune_results) == []


def test_absent_values_are_null(engine: sa.Engine) -> None:
    row = {**result_row(), "auc_buy_test": None, "optuna_trial_id": None}
    write_results(engine, scope(), [row])
    stored = _rows(engine, finetune_results)[0]
    assert stored["auc_buy_test"] is None and stored["optuna_trial_id"] is None


def test_a_database_migrated_before_the_version_table_rename_is_adopted(
    db_url: str, engine: sa.Engine
) -> None:
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    with engine.begin() as conn:  # the state a database migrated by an earlier release is in
        conn.execute(sa.text("create table alembic_version (version_num varchar(32) not null primary key)"))
        conn.execute(sa.text("insert into alembic_version values (:v)"), {"v": head})
        conn.execute(sa.text(f"drop table {VERSION_TABLE}"))
    store_engine._upgraded.discard(db_url)
    upgrade(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"select version_num from {VERSION_TABLE}")).scalar() == head
        assert conn.execute(sa.text("select count(*) from alembic_version")).scalar() == 0
    # Optuna's RDB storage now finds alembic's default table free for its own revision.
    optuna.create_study(storage=db_url, study_name="adopted")
    assert optuna.load_study(study_name="adopted", storage=db_url).trials == []


def test_the_widest_config_values_fit_both_dialects(engine: sa.Engine) -> None:
    """The largest cost level and the longest strategy label a config may hold are stored on SQLite and
    PostgreSQL alike (PostgreSQL rejected what SQLite took before they were bounded at load)."""
    wide = {**scope(cost_bps=MAX_BPS), "strategy": "s" * STRATEGY_MAX_LENGTH}
    row = {**result_row("xgboost", cost_bps=MAX_BPS), "strategy": wide["strategy"]}
    assert write_results(engine, wide, [row]) == 1
    stored = _rows(engine, finetune_results)[0]
    assert (stored["cost_bps"], stored["fee_bps"], stored["slippage_bps"]) == (MAX_BPS, MAX_BPS, 1.0)


def test_migration_0004_records_the_fee_and_leaves_unknown_slippage_null(
    db_url: str, engine: sa.Engine
) -> None:
    config = alembic_config(db_url)
    command.downgrade(config, "0003")
    with engine.begin() as conn:
        old = {
            k: v
            for k, v in result_row("xgboost", cost_bps=25).items()
            if k not in ("fee_bps", "slippage_bps", *SINCE_FEATURE_SETS)
            and not k.startswith("random_matched_")
        }
        conn.execute(sa.insert(sa.table("finetune_results", *map(sa.column, old))).values(old))
    command.upgrade(config, "head")
    stored = _rows(engine, finetune_results)[0]
    assert (stored["fee_bps"], stored["slippage_bps"]) == (25, None)


def test_migration_0005_leaves_the_matched_baseline_of_older_rows_null(
    db_url: str, engine: sa.Engine
) -> None:
    """Rows written before random_matched existed keep NULL there (never computed), which
    baselines_complete reports until their partition is re-run."""
    config = alembic_config(db_url)
    command.downgrade(config, "0004")
    with engine.begin() as conn:
        old = {
            k: v
            for k, v in result_row("xgboost").items()
            if not k.startswith("random_matched_") and k not in SINCE_FEATURE_SETS
        }
        conn.execute(sa.insert(sa.table("finetune_results", *map(sa.column, old))).values(old))
    command.upgrade(config, "head")
    stored = _rows(engine, finetune_results)[0]
    assert all(stored[c] is None for c in MATCHED_COLUMNS) and stored["sortino_test"] == 0.5
    with engine.connect() as conn:
        assert [p["variant"] for p in missing_matched_baselines(conn, RUN)] == ["xgboost"]


def test_the_realized_fills_migration_leaves_rows_assumed_and_its_downgrade_never_keeps_a_realized_label(
    db_url: str, engine: sa.Engine
) -> None:
    """Found by its file name, not its number, so that renumbering the migration leaves the test as it is."""
    from cvn_assets.core.fills import parse_fills
    from cvn_assets.store.fills import import_fills

    config = alembic_config(db_url)
    script = ScriptDirectory.from_config(config)
    fills_revision = next(r for r in script.walk_revisions() if r.path.endswith("_realized_fills.py"))
    command.downgrade(config, fills_revision.down_revision)
    assert "realized_fills" not in sa.inspect(engine).get_table_names()
    with engine.begin() as conn:
        old = _before_feature_sets(result_row("xgboost", crypto="BTCUSD"))
        conn.execute(sa.insert(sa.table("finetune_results", *map(sa.column, old))).values(old))
    command.upgrade(config, "head")
    stored = _rows(engine, finetune_results)[0]
    assert (stored["cost_basis"], stored["realized_cost_bps"]) == ("backtested_assumed", None)
    fills = "timestamp,symbol,side,price,quantity,fee,fee_currency\n2024-03-02T00:00:00Z,BTCUSDT,buy,100,1,0.1,USDT\n"
    import_fills(engine, parse_fills("fills.csv", fills.encode()))
    stored = _rows(engine, finetune_results)[0]
    assert (stored["cost_basis"], stored["realized_cost_bps"]) == ("realized_fills", 20.0)
    command.downgrade(config, fills_revision.down_revision)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("select cost_basis from finetune_results")).scalar() == "backtested_assumed"
        )
    command.upgrade(config, "head")


# Result columns later migrations added: 0008 feature_set, 0009 optuna_study and optuna_trial_number.
SINCE_FEATURE_SETS = ("feature_set", "optuna_study", "optuna_trial_number")


def _before_feature_sets(row: dict) -> dict:
    """A result row as it was written before migration 0008 added feature_set (and what came after)."""
    return {k: v for k, v in row.items() if k not in SINCE_FEATURE_SETS}


def test_rows_written_before_feature_sets_read_as_base_and_a_partition_holds_every_set(
    db_url: str, engine: sa.Engine
) -> None:
    config = alembic_config(db_url)
    script = ScriptDirectory.from_config(config)
    feature_sets = next(r for r in script.walk_revisions() if r.path.endswith("_feature_set_column.py"))
    command.downgrade(config, feature_sets.down_revision)
    old = _before_feature_sets(result_row("xgboost"))
    with engine.begin() as conn:
        conn.execute(sa.insert(sa.table("finetune_results", *map(sa.column, old))).values(old))
    command.upgrade(config, "head")
    assert [r["feature_set"] for r in _rows(engine, finetune_results)] == ["base"]
    # The same model on two feature sets: two rows of one partition, both replaced by a re-run.
    rows = [result_row("xgboost"), result_row("xgboost", feature_set="btc_overlay", value=0.7)]
    write_results(engine, scope(), rows)
    stored = _rows(engine, finetune_results)
    assert sorted((r["feature_set"], r["sortino_test"]) for r in stored) == [
        ("base", 0.5),
        ("btc_overlay", 0.7),
    ]
    write_results(engine, scope(), rows[1:])  # a re-run without base: its row goes
    assert [r["feature_set"] for r in _rows(engine, finetune_results)] == ["btc_overlay"]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(finetune_results).values(rows[1]))
    write_results(engine, scope(), rows)
    command.downgrade(config, feature_sets.down_revision)  # the old key holds one set: base's rows stay
    with engine.connect() as conn:
        kept = conn.execute(sa.text("select variant, sortino_test from finetune_results")).all()
    assert [tuple(r) for r in kept] == [("xgboost", 0.5)]
    command.upgrade(config, "head")


def test_rows_written_before_0009_get_their_study_and_trial_number_from_optunas_tables(
    db_url: str, engine: sa.Engine
) -> None:
    import optuna

    config = alembic_config(db_url)
    script = ScriptDirectory.from_config(config)
    numbered = next(
        r for r in script.walk_revisions() if r.path.endswith("_optuna_study_and_trial_number.py")
    )
    command.downgrade(config, numbered.down_revision)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = {}
    for name in ("tiny/other", "tiny/logreg/SYNA/f0"):  # the other study takes the first trial ids
        study = optuna.create_study(study_name=name, storage=db_url)
        for _ in range(3):
            study.enqueue_trial({"x": 1.0})
            study.optimize(lambda t: t.suggest_float("x", 0, 2), n_trials=1)
        studies[name] = study
    winner = studies["tiny/logreg/SYNA/f0"].trials[2]
    rows = [
        {**_before_feature_sets(result_row("logreg")), "optuna_trial_id": winner._trial_id},
        _before_feature_sets(result_row("xgboost")),  # fixed parameters: no trial
    ]
    with engine.begin() as conn:
        for row in rows:
            conn.execute(sa.insert(sa.table("finetune_results", *map(sa.column, row))).values(row))
    command.upgrade(config, "head")
    stored = {r["variant"]: r for r in _rows(engine, finetune_results)}
    assert winner._trial_id != 2  # the storage id is not the number: the other study came first
    assert (stored["logreg"]["optuna_study"], stored["logreg"]["optuna_trial_number"]) == (
        "tiny/logreg/SYNA/f0",
        2,
    )
    assert (stored["xgboost"]["optuna_study"], stored["xgboost"]["optuna_trial_number"]) == (None, None)


def test_the_short_fold_id_migration_renames_stored_rows_and_the_store_reads_either_form(
    db_url: str, engine: sa.Engine
) -> None:
    """Rows written with the long fold id (test window's start and end) read under the short one after
    0007, and its downgrade gives the long form back from the rows' test_end."""
    config = alembic_config(db_url)
    script = ScriptDirectory.from_config(config)
    short_ids = next(r for r in script.walk_revisions() if r.path.endswith("_short_fold_ids.py"))
    command.downgrade(config, short_ids.down_revision)
    long_id = "f003_2024-03-01_2024-03-21"  # START and END of store_rows
    with engine.begin() as conn:
        for table, row in (
            ("finetune_results", _before_feature_sets(result_row("xgboost", fold_id=long_id))),
            ("finetune_baselines", baseline_row("random", fold_id=long_id)),
            ("finetune_baselines", baseline_row("naive", fold_id="f000")),  # not of the long form: kept
        ):
            conn.execute(sa.insert(sa.table(table, *map(sa.column, row))).values(row))
    command.upgrade(config, "head")
    assert [r["fold_id"] for r in _rows(engine, finetune_results)] == ["f03_2024-03-01"]
    assert [r["fold_id"] for r in _rows(engine, finetune_baselines)] == ["f03_2024-03-01", "f000"]
    with engine.connect() as conn:
        for asked in (long_id, "f03_2024-03-01"):
            assert results_frame(conn, RUN, ["variant"], "SYNA", asked)["variant"].tolist() == ["xgboost"]
    # A re-run of the partition under its new key replaces the renamed rows, never adds beside them.
    write_results(engine, scope(fold_id="f03_2024-03-01"), [result_row("xgboost", fold_id="f03_2024-03-01")])
    assert len(_rows(engine, finetune_results)) == 1
    command.downgrade(config, short_ids.down_revision)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select fold_id from finetune_baselines order by id")).scalars().all()
    assert stored == [long_id, "f000"]
    command.upgrade(config, "head")
