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
