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

# code_server.py: the code server `dagster dev` shares between its webserver and daemon (Dagster's
# `code-server start` proxy, started and heartbeated); `dagster dev` is the only public way to get it.
from dagster._cli.proxy_server_manager import ProxyServerManager

# launch.py: a backfill's finished statuses; `BulkActionStatus` has no public "is terminal".
from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES

# run_launcher.py: the classes a run launcher subclasses and returns from its health check; Dagster
# exports only the base `RunLauncher`, not its context and result types (dagster_k8s imports them here too).
from dagster._core.launcher import DefaultRunLauncher, LaunchRunContext, ResumeRunContext
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

# run_coordinator.py: the queue a coordinator extends and the context it is handed; not exported.
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext

# instance_storage.py: Dagster's SQLite storages, subclassed to keep their connections (each opens a new
# engine per transaction); the directories and busy timeout they use, so the files stay the same. Dagster
# documents configuring them by these module paths (`module: dagster._core.storage.runs`) and exports none.
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._core.storage.sqlite_storage import _event_logs_directory as event_logs_directory
from dagster._core.storage.sqlite_storage import _runs_directory as runs_directory
from dagster._core.storage.sqlite_storage import _schedule_directory as schedule_directory

# run_launcher.py: the tag where DefaultRunLauncher records the code server a run was started from.
from dagster._core.storage.tags import GRPC_INFO_TAG

# launch.py: the webserver's workspace, in process, so `cvn sweep` launches through the same GraphQL
# schema the UI uses (dagster_graphql's own test utilities build it the same way).
from dagster._core.workspace.context import WorkspaceProcessContext

# code_server.py: the targets it loads: the module, or the workspace file pointing at the shared server.
from dagster._core.workspace.load_target import ModuleTarget, WorkspaceFileTarget

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
    ("dagster._core.storage.event_log", "SqliteEventLogStorage"),
    ("dagster._core.storage.runs", "SqliteRunStorage"),
    ("dagster._core.storage.schedules", "SqliteScheduleStorage"),
    ("dagster._core.storage.sqlite", "SQLITE_BUSY_TIMEOUT_SECONDS"),
    ("dagster._core.storage.sqlite_storage", "DagsterSqliteStorage"),
    ("dagster._core.storage.sqlite_storage", "_event_logs_directory"),
    ("dagster._core.storage.sqlite_storage", "_runs_directory"),
    ("dagster._core.storage.sqlite_storage", "_schedule_directory"),
    ("dagster._core.storage.tags", "GRPC_INFO_TAG"),
    ("dagster._core.workspace.context", "WorkspaceProcessContext"),
    ("dagster._core.workspace.load_target", "ModuleTarget"),
    ("dagster._core.workspace.load_target", "WorkspaceFileTarget"),
    ("dagster._cli.proxy_server_manager", "ProxyServerManager"),
    ("dagster._daemon.controller", "all_daemons_healthy"),
    ("dagster._cli.api", "execute_run_command"),
    ("dagster._grpc.types", "ExecuteRunArgs"),
)
