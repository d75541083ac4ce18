"""Every bench runs: each script in bench/ in its quick mode (tiny inputs), as `make bench` runs it in full,
exits 0 and prints its ratio lines. The figures are not checked (they come from the full mode); that the
script still runs is."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NUMBER = r"([0-9][0-9,]*\.?[0-9]*)"

# bench script -> the lines it must print, each with the figure it reports.
BENCHES: dict[str, list[str]] = {
    "harness_overhead.py": [
        rf"^{model}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$"
        for model in ("xgboost", "lightgbm", "catboost", "logreg")
    ],
    "hpo_throughput.py": [
        rf"^{model}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+\d+\s+{NUMBER}%\s+{NUMBER}%$"
        for model in ("xgboost", "lightgbm", "catboost")
    ],
    "random_baselines.py": [
        rf"^speed-up\s+:\s+{NUMBER}x\s+\(target >= 10x\)$",
        rf"^memory \d+ / \d+ seeds:\s+{NUMBER}\s+\(target: flat, about 1\)$",
    ],
    "code_location_load.py": [rf"^ratio \d+ / \d+\s+:\s+{NUMBER}\s+\(target <= 1.2\)$"],
    "orchestration_overhead.py": [
        rf"^ratio Dagster / bound\s+:\s+{NUMBER}\s+\(target <= 1.3\)$",
        rf"^ratio Dagster / serial loop\s+:\s+{NUMBER}\s+",
        rf"^run start, RUN_STARTING to 1st step :\s+{NUMBER} s\s+median over \d+ runs",
        rf"^instance SQL per step, in the runs\s+:\s+{NUMBER} reads, {NUMBER} writes",
    ],
    "ui_vs_cli.py": [rf"^ratio UI / CLI\s+:\s+{NUMBER}\s+\(target <= 1.0\)$"],
    "feature_set_cost.py": [rf"^ratio feature sets / base alone\s+:\s+{NUMBER}\s+\(target <= 1.5\)$"],
    "diagnostics_reuse.py": [rf"^ratio cold / warm\s+:\s+{NUMBER}\s+\(target >= 50\)$"],
    "memory_estimate.py": [
        rf"^interpreter: INTERPRETER_BYTES {NUMBER} MiB, measured now {NUMBER} MiB \(ratio {NUMBER}\)$",
        rf"^worst \|estimate / measured - 1\| :\s+{NUMBER}\s+\(target <= 0.25\)$",
    ],
}


# These two spend most of their time waiting on the daemon's 30 s loops: the module starts them at once, in
# the background, and the other benches run meanwhile.
WAITING_ON_DAGSTER = ("orchestration_overhead.py", "ui_vs_cli.py", "feature_set_cost.py")
TIMEOUT_S = 400


@dataclass
class BenchRun:
    """A bench started in the background; its output goes to files (a pipe nobody reads yet could fill
    and stall it)."""

    script: str
    process: subprocess.Popen[bytes]
    out: Path

    @classmethod
    def start(cls, script: str, out: Path) -> BenchRun:
        with (out / f"{script}.stdout").open("wb") as stdout, (out / f"{script}.stderr").open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, str(REPO / "bench" / script), "--quick"],
                cwd=REPO,
                stdout=stdout,
                stderr=stderr,
            )
        return cls(script, process, out)

    def output(self) -> tuple[str, str]:
        return tuple(  # type: ignore[return-value]
            (self.out / f"{self.script}.{name}").read_text(errors="replace") for name in ("stdout", "stderr")
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def started(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, BenchRun]]:
    """The Dagster benches among the selected tests, already running."""
    selected = {
        item.callspec.params.get("script") for item in request.session.items if hasattr(item, "callspec")
    }
    out = tmp_path_factory.mktemp("benches")
    running = {script: BenchRun.start(script, out) for script in WAITING_ON_DAGSTER if script in selected}
    yield running
    for run in running.values():
        run.stop()


def test_every_bench_has_a_quick_run_here() -> None:
    scripts = {p.name for p in (REPO / "bench").glob("*.py") if "def main(" in p.read_text()}
    assert scripts == set(BENCHES)
    target = (REPO / "Makefile").read_text().split("\nbench:", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"bench/(\w+\.py)", target)) == set(BENCHES)  # `make bench` runs every one


@pytest.mark.parametrize(
    "script", sorted(BENCHES, key=lambda s: (s in WAITING_ON_DAGSTER, s))
)  # the quick ones first, while the Dagster ones run
def test_bench_runs_in_quick_mode(script: str, started: dict[str, BenchRun], tmp_path: Path) -> None:
    run = started.get(script) or BenchRun.start(script, tmp_path)
    try:
        run.process.wait(TIMEOUT_S)
    except subprocess.TimeoutExpired:
        run.stop()
        stdout, stderr = run.output()
        pytest.fail(f"{script} --quick still running after {TIMEOUT_S} s:\n{stdout}\n{stderr[-3000:]}")
    stdout, stderr = run.output()
    assert run.process.returncode == 0, (
        f"{script} exited {run.process.returncode}:\n{stdout}\n{stderr[-3000:]}"
    )
    lines = stdout.splitlines()
    for pattern in BENCHES[script]:
        found = [m for m in map(re.compile(pattern).match, lines) if m]
        assert found, f"{script} printed no line matching {pattern!r}:\n{stdout}"
        for figure in found[0].groups():
            assert math.isfinite(float(figure.replace(",", ""))), found[0].group(0)
