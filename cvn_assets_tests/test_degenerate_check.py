"""`no_degenerate_variant` on a real Dagster instance: a WARN per economics partition naming each variant
that predicts a constant there (OOS AUC exactly 0.5, no OOS trade), run as the sweep job runs it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from cvn_assets.core.config import parse_config
from cvn_assets.defs.checks import FINDINGS
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.sweep import Sweep
from cvn_assets.store.engine import get_engine
from cvn_assets.store.schema import finetune_results
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.in_process import load_bars, run_partition, sweep_defs

pytestmark = pytest.mark.usefixtures("small_hyperparams")
CHECK = "no_degenerate_variant"


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        e.asset_check_key.to_user_string(): e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name in FINDINGS
    }


def test_a_variant_predicting_a_constant_warns_in_its_partition(tmp_path: Path) -> None:
    config = parse_config(small_raw_config(costs_bps=[0, 10]))
    sweep, db_url = Sweep.of(config), f"sqlite:///{tmp_path / 'r.db'}"
    defs = sweep_defs(config, db_url, tmp_path)
    with dg.instance_for_test() as instance:
        fold = load_bars(defs, config, instance, "SYNA").folds[0].fold_id
        run = run_partition(defs, config, instance, "SYNA", fold)
        assert run.success
        first = _evaluations(run)
        assert set(first) == {f"tiny/economics/economics_{c}bps:{CHECK}" for c in (0, 10)}
        assert all(e.passed for e in first.values()), {k: e.description for k, e in first.items()}

        # At 10 bps the variant now reads as a constant prediction: AUC 0.5 and no OOS trade.
        with get_engine(db_url).begin() as conn:
            conn.execute(
                sa.update(finetune_results)
                .where(finetune_results.c.cost_bps == 10)
                .values(auc_buy_test=0.5, n_trades_test=0, random_matched_n_trades_test=0.0)
            )
        recheck = defs.resolve_job_def(sweep.keys.sweep_job).execute_in_process(
            partition_key=str(partition_key("SYNA", fold)),
            instance=instance,
            raise_on_error=False,
            op_selection=[f"{sweep.name}_results_checks"],
        )
        found = _evaluations(recheck)
        assert found[f"tiny/economics/economics_0bps:{CHECK}"].passed
        warned = found[f"tiny/economics/economics_10bps:{CHECK}"]
        assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
        # One line per evaluation (the check's description is on its definition), with when it ran.
        assert warned.description == f"SYNA {fold} at 10 bps: 1 violating rows (xgboost)"
        assert isinstance(warned.metadata["evaluated_at"], dg.TimestampMetadataValue)
        table = warned.metadata["violating_rows"].value
        assert [
            (r.data["variant"], r.data["auc_buy_test"], r.data["n_trades_test"]) for r in table.records
        ] == [("xgboost", 0.5, 0)]
        assert warned.metadata["violations"].value == 1
