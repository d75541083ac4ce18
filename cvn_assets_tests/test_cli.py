from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cvn_assets.cli import main
from cvn_assets.core.config import EXTRA_SWEEPS_ENV
from cvn_assets.launch import DAEMON_LOCK, SweepOutcome
from cvn_assets_tests.conftest import small_raw_config

# Sweeps here train small models; their hyperparameters come from the environment (conftest).
pytestmark = pytest.mark.usefixtures("small_hyperparams")


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(small_raw_config()))
    return path


def test_sweep_prints_variants_vs_baselines_per_cost(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = tmp_path / "home"
    # Beside the two synthetic cryptos, one whose 40 days of bars hold no fold: named, and skipped as the
    # config allows.
    universe = {
        **small_raw_config()["universe"],
        "SHORT": {"kind": "table", "path": str(_short_bars(tmp_path / "short.csv", 40))},
    }
    (tmp_path / "sweep").mkdir()
    tiny_config = _write_config(tmp_path / "sweep", "tiny", universe=universe,
                                operations={"skip_cryptos_without_folds": True})  # fmt: skip
    assert main(["sweep", "--config", str(tiny_config), "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "missing keys seeded into ftf_config" in out  # the embedded default seeds what is not set
    assert "left out SHORT: its data covers" in out and "LEFT OUT SHORT, skipped" in out
    assert "== cost 0 bps" in out and "== cost 10 bps" in out
    for name in ("xgboost", "buy_and_hold", "random", "naive"):
        assert name in out
    # Three ohlcv runs and four crypto x fold runs, launched as backfills and run by Dagster's daemon; each
    # partition run evaluates the coverage check, and 4 results checks and 1 finding (no degenerate
    # variant) at each of 2 costs. Then one run of the report over them, like the UI's Materialize, with the
    # 4 sweep-wide audits and the fallback rate.
    assert "8 runs succeeded, 0 failed" in out and "asset checks: 49 passed, 0 failed, 0 warnings" in out
    assert "crypto x fold: 4/4 done, 0 failed" in out and "report: 1/1 done, 0 failed" in out
    assert (home / "results.db").is_file() and (home / "dagster" / "dagster.yaml").is_file()
    assert out.count("bps there is") == 2 and (home / "reports" / "tiny_proxy_economy.html").is_file()

    assert main(["summary", "--config", str(tiny_config), "--home", str(home)]) == 0
    assert "== cost 10 bps" in capsys.readouterr().out

    # The sweep file ran in this home is served from now on: `--sweep tiny` finds it, as the UI does.
    assert EXTRA_SWEEPS_ENV not in os.environ or str(tiny_config) in os.environ[EXTRA_SWEEPS_ENV]
    monkeypatch.delenv(EXTRA_SWEEPS_ENV, raising=False)
    assert main(["perf", "--sweep", "tiny", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "== sweep tiny: 8 finished runs" in out
    # Every run went through the daemon's launcher, so each has a launch-to-first-step figure.
    assert re.search(
        r"run start \(RUN_STARTING to the first step\): p50 \d+\.\d\d s, max \d+\.\d\d s over 8 runs", out
    ), out

    # A light re-audit of one cell, launched through the daemon like the sweep (a second daemon, right
    # after the first one stopped): the captured fold is fresh, so its run selects the diagnostics alone.
    assert main(["audit", "--sweep", "tiny", "--home", str(home), "--light", "--partition", "SYNA|f00"]) == 0
    out = capsys.readouterr().out
    assert "1 cells, light audit; 0 recompute part of their capture" in out
    assert "audit downgraded: the reproducibility anchor was skipped" in out
    assert "SKIPPED               reproducibility_anchor   xgboost" in out
    assert "PASS                  leakage" in out
    assert main(["audit", "--sweep", "tiny", "--home", str(home), "--partition", "NOPE|f00"]) == 2
    assert "--partition NOPE|f00: sweep tiny has no such crypto x fold partition" in capsys.readouterr().err
    assert main(["perf", "--sweep", "tiny", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "per diagnostic" in out and "diagnostic reproducibility_anchor" in out
    out_dir = tmp_path / "pages"
    assert main(["report", "--sweep", "tiny", "--home", str(home), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    for table in (
        "leaderboard",
        "overfitting",
        "correlations",
        "versus baselines",
        "diagnostics (verdicts by status)",
    ):
        assert f"-- {table} --" in out
    assert "Diagnostics: 1 cells audited, 0 complete, 1 downgraded" in out
    page = (out_dir / "tiny_proxy_economy.html").read_text()
    assert page.count("<img") == 3 and page.count("data:image/png;base64,") == 3
    assert "Equity curves: SYNB f01_" in page and "random_matched" in page
    assert main(["report", "--sweep", "nope", "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert "--sweep nope: no such sweep is served" in err and "Pass --config FILE" in err
    assert main(["report", "--config", str(tiny_config), "--home", str(home), "--out", str(out_dir)]) == 0
    assert "== sweep tiny" in capsys.readouterr().out
    assert main(["summary", "--sweep", "tiny", "--home", str(home)]) == 0


def test_plan_and_bad_config(tiny_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["plan", "--config", str(tiny_config)]) == 0
    assert "f00_2021-04-22: train" in capsys.readouterr().out
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
    assert "REJECTED ONEROW" in out and "f00_" in out  # the other crypto still has its folds


def _write_config(tmp_path: Path, name: str, **overrides: object) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(small_raw_config(**overrides)))
    return path


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"models": {"xgbooost": {}}}, "models.xgbooost"),
        ({"ensembles": {"blend_avg": {"enabled": True}}}, "ensembles.blend_avg"),
        ({"operations": {"cron": "61 * * * *"}}, "operations.cron"),
        ({"features": {"windows": [6, 5000]}}, "features.windows"),
        ({"labels": {"horizon_bars": 12, "atr_window": 3000}}, "labels.atr_window"),
    ],
)
def test_plan_and_sweep_reject_what_the_definitions_would_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, overrides: dict, key: str
) -> None:
    bad = _write_config(tmp_path, "bad", **overrides)
    for command in ("plan", "sweep"):
        assert main([command, "--config", str(bad), "--home", str(tmp_path / "home")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"config key '{key}'" in err and str(bad) in err, err
    assert not (tmp_path / "home" / "dagster" / "daemon.log").exists()  # nothing was launched


def test_plan_names_the_fold_setting_that_fits_no_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = _write_config(tmp_path, "long", folds={"train": "400d", "validation": "20d", "test": "20d"})
    assert main(["plan", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert "REJECTED SYNA" in captured.out
    assert "config key 'folds.train'" in captured.err and "shorten folds.train" in captured.err


def test_sweep_against_a_configured_database_stops_before_launching_without_hyperparameters(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("CVN_HPO_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CVN_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    home = tmp_path / "not" / "yet" / "home"  # a CVN_HOME that does not exist yet is created
    config = _write_config(tmp_path, "tiny")
    assert main(["sweep", "--config", str(config), "--home", str(home)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: nothing was launched: ") and "`cvn hp seed --apply`" in err
    assert len(err.splitlines()) == 1 and home.is_dir() and not (home / "daemon.log").exists()


def test_sweep_with_the_results_database_down_says_so_before_launching(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CVN_DATABASE_URL", "postgresql+psycopg://cvn:s3cret-pw@127.0.0.1:9/cvn")
    config = _write_config(tmp_path, "tiny")
    assert main(["sweep", "--config", str(config), "--home", str(tmp_path / "home")]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: the results database postgresql+psycopg://cvn:***@127.0.0.1:9/cvn")
    assert len(err.splitlines()) == 1 and "s3cret-pw" not in captured.out + captured.err


def test_a_crypto_left_out_fails_the_sweep_unless_skipping_is_allowed() -> None:
    left = SweepOutcome(left_out={"SHORT": "its data covers ..."})
    assert not left.ok
    assert SweepOutcome(left_out={"SHORT": "..."}, left_out_fails=False).ok and SweepOutcome().ok


def _short_bars(path: Path, days: int) -> Path:
    index = pd.date_range("2021-01-01", periods=24 * days, freq="h", tz="UTC")
    close = 100 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, len(index))))
    frame = pd.DataFrame({"timestamp": index.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": close, "high": close * 1.01,
                          "low": close * 0.99, "close": close, "volume": 1.0})  # fmt: skip
    frame.to_csv(path, index=False)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its entry is left for its parent to reap.
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_the_daemon_a_killed_sweep_started_exits_and_a_second_is_refused_while_one_lives(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    home = tmp_path / "home"
    config = _write_config(tmp_path, "tiny")
    env = {**os.environ, "CVN_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    sweep = subprocess.Popen(
        [sys.executable, "-m", "cvn_assets.cli", "sweep", "--config", str(config)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    lock = home / "dagster" / DAEMON_LOCK
    deadline = time.monotonic() + 120
    while not (lock.is_file() and lock.read_text().strip()):
        assert time.monotonic() < deadline and sweep.poll() is None, "cvn sweep started no daemon"
        time.sleep(0.2)
    daemon = int(lock.read_text())
    assert _alive(daemon)
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    deadline = time.monotonic() + 60
    while _alive(daemon):
        assert time.monotonic() < deadline, f"the daemon {daemon} outlived the cvn sweep that started it"
        time.sleep(0.5)

    # A daemon that still holds the home's lock (here: a stand-in holding it) is never joined by a second.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); f.write('4242'); f.flush(); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(["sweep", "--config", str(config), "--home", str(home)]) == 2
        err = capsys.readouterr().err
        assert "still running (pid 4242" in err and "kill 4242" in err
    finally:
        holder.kill()
        holder.wait()
