"""`cvn ui` (what `make ui` runs): the Dagster webserver and daemon over one instance, stopped cleanly.

`dagster dev` is not used: on Ctrl-C it waits on its webserver, daemon and code servers, which hung for
over a minute, and it prints a deprecation notice. Here the webserver and the daemon (and the runs it starts) share one process
group of their own, and one code server that this process starts for them as `dagster dev` does
(`code_server.py`); SIGINT or SIGTERM asks the group to stop, and whatever is still alive after `GRACE_S`
is killed, then the code server, so the UI is gone within seconds. Both
run from the instance's folder, so a `dagster.yaml` in the caller's folder (the repository's own) is not
mistaken for a stale instance config.

Beside them, a read-only file server at the UI's port + 1 serves the report's published figures and page
(`<artifacts>/reports`, see artifacts/published.py), which the report asset's metadata links to, so the UI
shows the plots inline. The runs the UI starts are told its address in `CVN_REPORTS_URL`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

GRACE_S = 5.0  # how long the processes get to stop before they are killed


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc (Linux; elsewhere only the direct children are stopped)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = entry.read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.parent.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.kill(pid, sig)


class _PublishedFiles(SimpleHTTPRequestHandler):
    """GET and HEAD of the published files only: no folder listing, no upload, no log line per request."""

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        self.send_error(404, "no listing here")
        return None

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def serve_reports(root: Path, host: str, port: int) -> ThreadingHTTPServer | None:
    """Serve `root` read-only on host:port from a daemon thread; None (with a line saying so) when the port
    is taken: the UI still runs, its plots one click away."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        server = ThreadingHTTPServer((host, port), partial(_PublishedFiles, directory=str(root)))
    except OSError as exc:
        print(
            f"report files not served ({host}:{port}: {exc.strerror}); plots stay one click away", flush=True
        )
        return None
    threading.Thread(target=server.serve_forever, name="report-files", daemon=True).start()
    return server


def run_ui(dagster_home: Path, host: str, port: int, reports_dir: Path | None = None) -> int:
    """Serve the UI on host:port until SIGINT or SIGTERM (and `reports_dir`, the published report files,
    on port + 1); returns the exit status."""
    import dagster as dg

    from cvn_assets.artifacts.published import REPORTS_URL_ENV
    from cvn_assets.code_server import shared_code_server

    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    files = serve_reports(reports_dir, host, port + 1) if reports_dir is not None else None
    if files is not None and not os.environ.get(REPORTS_URL_ENV):
        env[REPORTS_URL_ENV] = f"http://{host}:{port + 1}"
    os.environ.update(env)  # the code server's environment too: it is started from this process
    # The instance's storage is created here, once: a webserver and a daemon started together on a fresh
    # SQLite home would both create its tables, and the loser of that race exits.
    with (
        dg.DagsterInstance.from_config(str(dagster_home)) as instance,
        shared_code_server(instance) as workspace,
    ):
        status = _serve(workspace, dagster_home, env, host, port, files, reports_dir)
    # The code server was asked to stop; whatever of it (or of a run) is still there goes now.
    left = descendants(os.getpid())
    _signal_all(left, signal.SIGTERM)
    time.sleep(0.5 if left else 0)
    _signal_all(left, signal.SIGKILL)
    if files is not None:
        files.shutdown()
    return status


def _serve(
    workspace: Path,
    dagster_home: Path,
    env: dict[str, str],
    host: str,
    port: int,
    files: ThreadingHTTPServer | None,
    reports_dir: Path | None,
) -> int:
    """The webserver and the daemon on `workspace` until SIGINT or SIGTERM, or until one exits."""
    from cvn_assets.launch import die_with_parent

    bin_dir = Path(sys.executable).parent
    commands = [
        [str(bin_dir / "dagster-webserver"), "-h", host, "-p", str(port), "-w", str(workspace)],
        [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)],
    ]
    processes: list[subprocess.Popen[bytes]] = []
    for command in commands:
        group = processes[0].pid if processes else 0  # 0: a new group, led by the webserver
        processes.append(
            subprocess.Popen(
                command,
                cwd=dagster_home,
                env=env,
                process_group=group,
                preexec_fn=die_with_parent(os.getpid()),
            )  # fmt: skip
        )
    print(f"Dagster UI: http://{host}:{port}  (instance {dagster_home}; Ctrl-C stops it)", flush=True)
    if files is not None:
        print(f"report files: http://{host}:{port + 1}  ({reports_dir})", flush=True)
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(p.poll() is None for p in processes):
        time.sleep(0.2)
    exited = [Path(c[0]).name for c, p in zip(commands, processes, strict=True) if p.poll() is not None]
    tree = [pid for p in processes for pid in (p.pid, *descendants(p.pid))]
    _signal_all(tree, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and any(p.poll() is None for p in processes):
        time.sleep(0.1)
    _signal_all([*tree, *(pid for p in processes for pid in descendants(p.pid))], signal.SIGKILL)
    for process in processes:
        process.wait()
    if not stopping:
        print(f"{' and '.join(exited)} exited; the UI is stopped", file=sys.stderr)
        return 1
    return 0
