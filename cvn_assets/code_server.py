"""One code server for the Dagster processes a `cvn` command starts, the way `dagster dev` runs them.

Given a workspace that names a Python module, Dagster's daemon starts a code server of its own and, every
60 s (its workspace refresh), starts a fresh one to replace it; the old one exits on its missed heartbeat
20 s later. Each imports Dagster, our package and the model libraries and builds every sweep's definitions
again: 5-9 CPU-s on two cores, four times during a demo sweep, taken from the runs. The launcher of
`cvn sweep` (and a webserver) starts one more each.

Here the command starts one code server for its whole session, Dagster's `code-server start` (the proxy
`dagster dev` uses: the UI's Reload loads the definitions afresh), and hands the daemon and the launcher a
workspace file whose `grpc_server` entry is that server's local socket. The daemon's minute refresh then
only reads the definitions' snapshot again. A code location on a local socket shares the daemon's
environment, so its runs still start warm (`warm_start.shares_environment`). The server is this process's
child and exits with it: on the way out, or within 45 s of its last heartbeat if this process is killed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import dagster as dg
import yaml

from cvn_assets.dagster_internals import ModuleTarget, ProxyServerManager, WorkspaceFileTarget

LOCATION = "cvn_assets"  # the code location's name, in every workspace
DEFINITIONS = ModuleTarget(
    module_name="cvn_assets.definitions", attribute="defs", working_directory=None, location_name=LOCATION
)


@contextmanager
def shared_code_server(
    instance: dg.DagsterInstance, output: IO[bytes] | None = None, env: Mapping[str, str] | None = None
) -> Iterator[Path]:
    """Start the code server, its output (sensor logs) to `output` and its environment `env` (default: this
    process's); yields the workspace file that points at it (in a folder of its own, gone afterwards, as
    the server is)."""
    # What the server inherits: Dagster starts it with this process's output and environment.
    with _output_to(output), _environment(env):
        servers = ProxyServerManager(instance, DEFINITIONS, code_server_log_level="WARNING")
    with servers, tempfile.TemporaryDirectory(prefix="cvn-workspace-") as folder:
        workspace = Path(folder) / "workspace.yaml"
        workspace.write_text(yaml.safe_dump({"load_from": list(servers.get_code_server_specs())}))
        yield workspace


@contextmanager
def _output_to(output: IO[bytes] | None) -> Iterator[None]:
    """This process's stdout and stderr file descriptors on `output` for the duration (children started
    meanwhile keep it); None: unchanged."""
    if output is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        for fd in (1, 2):
            os.dup2(output.fileno(), fd)
        yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


@contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    """os.environ is `env` for the duration; None: unchanged."""
    if env is None:
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def workspace_target(workspace: Path | None) -> ModuleTarget | WorkspaceFileTarget:
    """What an in-process workspace loads: the shared code server's workspace, or (None) the module, in a
    code server of its own."""
    return DEFINITIONS if workspace is None else WorkspaceFileTarget(paths=[str(workspace)])
