"""Every name cvn_assets takes from Dagster's private modules (`dagster._...`), in one place.

Dagster's public API has no equivalent for these; each line says who uses it and why. An upgrade that moves
one fails here, at import, and `cvn_assets_tests/test_dagster_internals.py` names the moved name and this
file. Nothing else in `cvn_assets` may import `dagster._...` (that test checks it too).
"""

# ruff: noqa: F401  (every import here is for the modules named beside it; USES lists them once more)
from __future__ import annotations

# warm_start.py: the command `dagster api execute_run` (the run worker dagster_docker and dagster_k8s
# start), called in a process forked from a preloaded one instead of a fresh interpreter.
from dagster._cli.api import execute_run_command

# launch.py: a backfill's finished statuses; `BulkActionStatus` has no public "is terminal".
from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES

# run_launcher.py: the classes a run launcher subclasses and returns from its health check; Dagster
# exports only the base `RunLauncher`, not its context and result types (dagster_k8s imports them here too).
from dagster._core.launcher import DefaultRunLauncher, LaunchRunContext, ResumeRunContext
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

# run_coordinator.py: the queue a coordinator extends and the context it is handed; not exported.
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext

# run_launcher.py: the tag where DefaultRunLauncher records the code server a run was started from.
from dagster._core.storage.tags import GRPC_INFO_TAG

# launch.py: the webserver's workspace, in process, so `cvn sweep` launches through the same GraphQL
# schema the UI uses (dagster_graphql's own test utilities build it the same way).
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget

# launch.py: whether the daemon heartbeats, with a tolerance of our own (`dagster-daemon liveness-check`
# only prints it, with Dagster's half-hour tolerance).
from dagster._daemon.controller import all_daemons_healthy

# warm_start.py: that command's arguments, serialized as the command takes them.
from dagster._grpc.types import ExecuteRunArgs

# (module, name) of every import above: the upgrade test checks each one resolves.
USES: tuple[tuple[str, str], ...] = (
    ("dagster._core.execution.backfill", "BULK_ACTION_TERMINAL_STATUSES"),
    ("dagster._core.launcher", "DefaultRunLauncher"),
    ("dagster._core.launcher", "LaunchRunContext"),
    ("dagster._core.launcher", "ResumeRunContext"),
    ("dagster._core.launcher.base", "CheckRunHealthResult"),
    ("dagster._core.launcher.base", "WorkerStatus"),
    ("dagster._core.run_coordinator", "QueuedRunCoordinator"),
    ("dagster._core.run_coordinator", "SubmitRunContext"),
    ("dagster._core.storage.tags", "GRPC_INFO_TAG"),
    ("dagster._core.workspace.context", "WorkspaceProcessContext"),
    ("dagster._core.workspace.load_target", "ModuleTarget"),
    ("dagster._daemon.controller", "all_daemons_healthy"),
    ("dagster._cli.api", "execute_run_command"),
    ("dagster._grpc.types", "ExecuteRunArgs"),
)
