"""Real services for the test session: an ephemeral PostgreSQL cluster and an S3 endpoint on loopback."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise RuntimeError(
            f"PostgreSQL's {name} was not found on PATH or under /usr/lib/postgresql/*/bin; "
            "install Debian's postgresql package (.ci/run does this)"
        )
    return found


@contextmanager
def ephemeral_postgres() -> Iterator[str]:
    """initdb + pg_ctl a throwaway cluster on a free loopback port; yields a SQLAlchemy URL to it.

    PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user via setpriv.
    """
    root = Path(tempfile.mkdtemp(prefix="cvn-pg-"))
    data, log = root / "data", root / "server.log"
    as_root = os.geteuid() == 0
    drop = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        [
            *drop,
            pg_binary("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        [
            *drop,
            pg_binary("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*drop, pg_binary("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def s3_endpoint() -> Iterator[str]:
    """moto's threaded S3 server on loopback; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def wait_for_webserver(url: str, processes: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    """Until the webserver at `url` answers; raises, naming the process that exited (or the timeout) and
    showing the end of `logs`, if one of `processes` exits first or 120 s pass."""
    import time
    import urllib.request

    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2):
                return
        except OSError:
            exited = [name for name, p in processes.items() if p.poll() is not None]
            if time.monotonic() > deadline or exited:
                why = f"the {' and '.join(exited)} exited" if exited else "no answer in 120 s"
                tail = logs.read_text(errors="replace")[-3000:]
                raise RuntimeError(
                    f"the Dagster webserver did not start ({why}); {logs} ends:\n{tail}"
                ) from None
            time.sleep(0.5)


def alive(pids: Iterable[int]) -> list[int]:
    """Those of `pids` still running (a zombie has stopped; only its parent's wait is missing)."""
    running = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.append(pid)
    return running


@contextmanager
def dagster_services(dagster_home: Path, env: dict[str, str]) -> Iterator[str]:
    """A real Dagster webserver and daemon on loopback over `dagster_home`; yields the webserver's URL.

    What a user runs with `make ui`: the GraphQL API the UI's buttons call, and the daemon that runs
    backfills, the run queue and sensors, on one code server they share (`cvn_assets/code_server.py`).
    """
    import sys

    import dagster as dg

    from cvn_assets.code_server import shared_code_server

    bin_dir = Path(sys.executable).parent
    logs = dagster_home / "services.log"
    with logs.open("ab") as log:
        # The instance's storage is created once, here: a webserver and a daemon started together on a fresh
        # SQLite home both create its tables, and the loser of that race exits.
        subprocess.run([str(bin_dir / "dagster"), "instance", "migrate"], env=env, stdout=log,
                       stderr=subprocess.STDOUT, check=True)  # fmt: skip
    with (
        dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance,
        logs.open("ab") as log,
        shared_code_server(instance, output=log, env=env) as shared,
    ):
        yield from _webserver_and_daemon(bin_dir, logs, env, shared)


def _webserver_and_daemon(bin_dir: Path, logs: Path, env: dict[str, str], workspace: Path) -> Iterator[str]:
    port = free_port()
    with logs.open("ab") as log:
        processes = [
            subprocess.Popen(
                [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            ),
            subprocess.Popen(
                [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            ),
        ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_webserver(url, dict(zip(("webserver", "daemon"), processes, strict=True)), logs)
        yield url
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    """POST a query to the webserver's GraphQL endpoint, as the UI does."""
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


class Receiver:
    """What an HTTP receiver on loopback got: each POST's path and body. `down` makes it answer 503."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.down = False
        self.refused = 0
        self.received: list[tuple[str, bytes]] = []

    def take(self) -> list[tuple[str, bytes]]:
        taken, self.received = self.received, []
        return taken


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    """An alert receiver on loopback: a webhook at any path, and Slack's chat.postMessage under /api/."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if receiver.down:
                receiver.refused += 1
                self.send_response(503)
                self.end_headers()
                return
            receiver.received.append((self.path, body))
            answer = json.dumps({"ok": True, "channel": "C1", "ts": "1.0"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


# -- the production topology as separate processes (test_production_topology.py) --------------------------


class ServiceProcess:
    """One server process on loopback, its output appended to `log`: started, probed until it serves,
    stopped (SIGTERM, then SIGKILL) and restarted as an operator would restart it."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log: Path,
        ready: Callable[[], bool] | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.ready, self.timeout_s = ready, timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> ServiceProcess:
        """Start the process and return at once; `wait_ready` waits until it serves."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            log.write(f"\n===== {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        return self

    def wait_ready(self) -> ServiceProcess:
        """Until `ready()` holds; a process that exits or never gets ready fails with its log's tail."""
        import time

        deadline = time.monotonic() + self.timeout_s
        while self.ready is not None and not self.ready():
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited before serving; see {self.log}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} did not serve in {self.timeout_s:.0f} s; see {self.log}:\n{self.tail()}"
                )
            time.sleep(0.5)
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        self.process = None

    def restart(self) -> ServiceProcess:
        self.stop()
        return self.start().wait_ready()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextmanager
def service(process: ServiceProcess) -> Iterator[ServiceProcess]:
    """`process` started and serving for the duration; stopped however the block ends."""
    try:
        yield process.start().wait_ready()
    finally:
        process.stop()


def http_ready(url: str) -> Callable[[], bool]:
    """A probe: `url` answers 2xx."""
    import urllib.request

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return 200 <= response.status < 300
        except OSError:
            return False

    return probe


def grpc_ready(host: str, port: int) -> Callable[[], bool]:
    """A probe: the Dagster gRPC server on host:port has loaded its code and lists its repositories."""
    from dagster._grpc.client import DagsterGrpcClient

    def probe() -> bool:
        try:
            client = DagsterGrpcClient(host=host, port=port)
            client.ping("")
            client.list_repositories()
        except Exception:  # not up yet, or still loading the code
            return False
        return True

    return probe


def code_server(
    port: int, env: dict[str, str], log: Path, module: str = "cvn_assets.definitions", attribute: str = "defs"
) -> ServiceProcess:
    """`dagster code-server start` serving `module:attribute` on 127.0.0.1:port, what a code location
    deployment runs (the webserver and the daemon load it through a `grpc_server` workspace entry)."""
    argv = [_bin("dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(port), "-m", module,
            "-a", attribute]  # fmt: skip
    return ServiceProcess("dagster code-server", argv, env, log, grpc_ready("127.0.0.1", port), 180.0)


def grpc_workspace(path: Path, port: int, location_name: str) -> Path:
    """A workspace.yaml that loads the code location from the gRPC server on 127.0.0.1:port."""
    path.write_text(
        "load_from:\n"
        f"  - grpc_server:\n      host: 127.0.0.1\n      port: {port}\n      location_name: {location_name}\n"
    )
    return path


def dagster_webserver(port: int, workspace: Path, env: dict[str, str], log: Path) -> ServiceProcess:
    argv = [_bin("dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)]
    return ServiceProcess(
        "dagster-webserver", argv, env, log, http_ready(f"http://127.0.0.1:{port}/server_info")
    )


def dagster_daemon(workspace: Path, env: dict[str, str], log: Path) -> ServiceProcess:
    """`dagster-daemon run`: backfills, the run queue, sensors, run monitoring. Ready once started (its
    heartbeat is the instance's to check)."""
    return ServiceProcess("dagster-daemon", [_bin("dagster-daemon"), "run", "-w", str(workspace)], env, log)


def mlflow_server(
    port: int, backend_store_uri: str, artifacts_destination: str, env: dict[str, str], log: Path
) -> ServiceProcess:
    """An MLflow tracking server on 127.0.0.1:port: runs and the registry in `backend_store_uri`, artifacts
    proxied to `artifacts_destination` (s3://...: the server's env carries the S3 endpoint and keys)."""
    argv = [_bin("mlflow"), "server", "--backend-store-uri", backend_store_uri, "--artifacts-destination",
            artifacts_destination, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    return ServiceProcess(
        "mlflow server", argv, env, log, http_ready(f"http://127.0.0.1:{port}/health"), 180.0
    )


def _bin(name: str) -> str:
    """A console script of the running interpreter's environment (the venv's)."""
    import sys

    return str(Path(sys.executable).parent / name)
