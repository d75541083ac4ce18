"""Real services for the test session: an ephemeral PostgreSQL cluster and an S3 endpoint on loopback."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
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


@contextmanager
def dagster_services(dagster_home: Path, env: dict[str, str], workspace: Path) -> Iterator[str]:
    """A real Dagster webserver and daemon on loopback over `dagster_home`; yields the webserver's URL.

    What a user runs with `make ui`: the GraphQL API the UI's buttons call, and the daemon that runs
    backfills, the run queue and sensors.
    """
    import sys
    import time
    import urllib.request

    bin_dir = Path(sys.executable).parent
    port = free_port()
    logs = dagster_home / "services.log"
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
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise RuntimeError(f"the Dagster webserver did not start; see {logs}") from None
                time.sleep(0.5)
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
