"""`make ui` (`cvn ui`): the webserver and daemon start without a stale-config or deprecation warning, and
Ctrl-C (SIGINT) or SIGTERM stops them, and the one code server they share, within 10 seconds; the report's published
files are served beside them, read-only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cvn_assets.ui import descendants, serve_reports
from cvn_assets_tests.services import alive, free_port, wait_for_webserver

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_ui_starts_without_warnings_and_stops_within_ten_seconds(
    sig: signal.Signals, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    log = tmp_path / "ui.log"
    with log.open("wb") as out:
        ui = subprocess.Popen(
            [str(Path(sys.executable).with_name("cvn")), "ui", "--home", str(tmp_path / "home"), "--port", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    figure = tmp_path / "home" / "artifacts" / "reports" / "demo" / "abc.png"
    figure.parent.mkdir(parents=True)
    figure.write_bytes(b"\x89PNG figure")
    try:
        wait_for_webserver(f"http://127.0.0.1:{port}", {"cvn ui": ui}, log)
        # The report's links point at the UI's port + 1, which serves the home's published files.
        assert _get(f"http://127.0.0.1:{port + 1}/demo/abc.png") == (200, b"\x89PNG figure")
        time.sleep(3)  # the daemon and the code server are up by now
        tree = descendants(ui.pid)
        assert len(tree) >= 4, tree  # webserver, daemon, the code server's proxy and its server
        # One code server for both (`code_server.py`): neither the webserver nor the daemon starts its own.
        servers = [pid for pid in tree if b"api\x00grpc" in _cmdline(pid)]
        assert len(servers) == 1, [_cmdline(pid) for pid in tree]
        started = time.monotonic()
        ui.send_signal(sig)
        ui.wait(timeout=10)
        while alive(tree) and time.monotonic() - started < 10:
            time.sleep(0.1)
        assert not alive(tree), f"still running 10 s after {sig.name}: {alive(tree)}"
        assert ui.returncode == 0, log.read_text()
    finally:
        if ui.poll() is None:
            ui.kill()
    output = log.read_text()
    assert "Found a dagster instance configuration value" not in output
    assert "Warning" not in output, output


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_the_report_files_are_served_read_only_without_a_listing(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "page.html").write_text("<h1>report</h1>")
    port = free_port()
    server = serve_reports(tmp_path, "127.0.0.1", port)
    assert server is not None
    try:
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/demo/page.html") == (200, b"<h1>report</h1>")
        assert _get(f"{base}/demo/")[0] == 404 and _get(f"{base}/")[0] == 404
        assert _get(f"{base}/../etc/passwd")[0] == 404
        put = urllib.request.Request(f"{base}/demo/page.html", data=b"x", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(put, timeout=5)
        assert refused.value.code == 501
        assert serve_reports(tmp_path, "127.0.0.1", port) is None  # the port is taken: said, not raised
    finally:
        server.shutdown()
