from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cvn_assets.cli import main
from cvn_assets.core.config import EXTRA_SWEEPS_ENV
from cvn_assets_tests.conftest import small_raw_config

# Sweeps here train small models; their hyperparameters come from the environment (conftest).
pytestmark = pytest.mark.usefixtures("small_hyperparams")


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(small_raw_config()))
    return path


def test_sweep_prints_variants_vs_baselines_per_cost(tiny_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = tmp_path / "home"
    assert main(["sweep", "--config", str(tiny_config), "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "== cost 0 bps" in out and "== cost 10 bps" in out
    for name in ("xgboost", "buy_and_hold", "random", "naive"):
        assert name in out
    # Two ohlcv runs and four crypto x fold runs, launched as backfills and run by Dagster's daemon; each
    # partition run evaluates the coverage check and 4 results checks at each of 2 costs.
    # Then one run of the report over them, launched like the UI's Materialize.
    assert "7 runs succeeded, 0 failed" in out and "asset checks: 36 passed, 0 failed" in out
    assert "crypto x fold: 4/4 done, 0 failed" in out and "report: 1/1 done, 0 failed" in out
    assert (home / "results.db").is_file() and (home / "dagster" / "dagster.yaml").is_file()
    assert out.count("bps there is") == 2 and (home / "reports" / "tiny_proxy_economy.html").is_file()

    assert main(["summary", "--config", str(tiny_config), "--home", str(home)]) == 0
    assert "== cost 10 bps" in capsys.readouterr().out

    monkeypatch.setenv(EXTRA_SWEEPS_ENV, str(tiny_config))  # served beside the packaged sweeps
    out_dir = tmp_path / "pages"
    assert main(["report", "--sweep", "tiny", "--home", str(home), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    for table in ("leaderboard", "overfitting", "correlations", "versus baselines"):
        assert f"-- {table} --" in out
    page = (out_dir / "tiny_proxy_economy.html").read_text()
    assert page.count("<img") == 3 and page.count("data:image/png;base64,") == 3
    assert "Equity curves: SYNB f001" in page and "random_matched" in page
    assert main(["report", "--sweep", "nope", "--home", str(home)]) == 2
    assert "--sweep nope: no such sweep is served" in capsys.readouterr().err


def test_plan_and_bad_config(tiny_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["plan", "--config", str(tiny_config)]) == 0
    assert "f000_2021-04-22_2021-05-12: train" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(small_raw_config(costs_bps=[-1])))
    assert main(["plan", "--config", str(bad)]) == 2
    assert "config key 'costs_bps.0'" in capsys.readouterr().err


def test_db_upgrade(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["db", "upgrade", "--home", str(tmp_path / "h")]) == 0
    assert "results database at head" in capsys.readouterr().out


def test_an_unreachable_results_database_is_one_line_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CVN_DATABASE_URL", "postgresql+psycopg://cvn:s3cret-pw@127.0.0.1:9/cvn")
    assert main(["db", "upgrade", "--home", str(tmp_path / "h")]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith(
        "error: the results database postgresql+psycopg://cvn:***@127.0.0.1:9/cvn is unavailable"
    )
    assert len(err.splitlines()) == 1 and "s3cret-pw" not in captured.out + captured.err


def test_plan_exits_non_zero_naming_a_rejected_crypto(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    short = tmp_path / "short.csv"
    short.write_text("timestamp,open,high,low,close,volume\n2021-01-01T00:00:00Z,1,1,1,1,1\n")
    raw = small_raw_config(
        universe={"SYNA": {"kind": "synthetic"}, "ONEROW": {"kind": "table", "path": str(short)}}
    )
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["plan", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "REJECTED ONEROW" in out and "f000_" in out  # the other crypto still has its folds
