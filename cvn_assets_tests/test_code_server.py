"""The one code server a `cvn` command starts for its daemon, webserver and launcher (`code_server.py`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import yaml

from cvn_assets.code_server import LOCATION, shared_code_server, workspace_target
from cvn_assets.dagster_internals import WorkspaceProcessContext
from cvn_assets.instance_storage import instance_yaml
from cvn_assets.ui import descendants
from cvn_assets_tests.services import alive

REPO = Path(__file__).resolve().parents[1]


def test_the_workspace_points_at_one_server_that_serves_the_sweeps_and_stops_with_the_session(
    tmp_path: Path,
) -> None:
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(instance_yaml(REPO / "dagster.yaml", dagster_home))
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "CVN_HOME": str(tmp_path)}
    log = tmp_path / "daemon.log"
    before, environ_before = set(descendants(os.getpid())), dict(os.environ)
    with (
        dg.DagsterInstance.from_config(str(dagster_home)) as instance,
        log.open("ab") as output,
        shared_code_server(instance, output=output, env=env) as workspace,
    ):
        (entry,) = yaml.safe_load(workspace.read_text())["load_from"]
        assert entry["grpc_server"]["location_name"] == LOCATION
        assert Path(entry["grpc_server"]["socket"]).exists()  # a local socket: its runs are forked warm
        started = set(descendants(os.getpid())) - before
        assert started, "no code server process was started"
        with WorkspaceProcessContext(instance, workspace_target(workspace)) as context:
            location = context.create_request_context().get_code_location(LOCATION)
            repository = location.get_repository("__repository__")
            assert repository.has_sensor("demo_scheduled_refresh")  # the packaged demo sweep
        assert dict(os.environ) == environ_before  # only the server was started with `env`
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and alive(started):
        time.sleep(0.2)
    assert not alive(started), f"the code server outlived its session: {alive(started)}"
    assert not workspace.exists()
