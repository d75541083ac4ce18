"""MLflow tracking and registry: one MLflow run per model or ensemble materialization of a partition.

Every `model/<name>` and `ensemble/<name>` materialization logs one MLflow run, named `<variant> · <crypto>
· <fold>`, in the experiment `cvn/<sweep>`: its parameters (secrets masked, `core/secrets.py`), validation
and test metrics (named as the results store's columns: `f1_buy_val`, `auc_buy_test`, ...), the native
model file with its library version, the calibrator (skops) and tags that join it back to the sweep, the
partition, the data and the Dagster run. Re-materializing a partition logs a new run beside the old ones
(MLflow keeps the history; the registry and `latest_runs` take the newest finished one). The report
registers, per sweep, crypto and cost level, the variant it picks (`register_champions`).

Where it goes, read once when the code location loads:
  MLFLOW_TRACKING_URI        a tracking server (http://mlflow:5000) or a database URI; read through EnvVar,
                             so its credentials never show in the UI. Server credentials are MLflow's own
                             MLFLOW_TRACKING_USERNAME / _PASSWORD / _TOKEN, read by MLflow only.
  MLFLOW_REGISTRY_URI        optional: a separate model registry (default: the tracking URI)
  CVN_MLFLOW_ARTIFACT_ROOT   optional: the experiments' artifact root (s3://bucket/mlflow); a server's own
                             default otherwise, and CVN_HOME/mlartifacts for a database URI
  CVN_MLFLOW=off             no tracking and no registry
  MLFLOW_DISABLE_TELEMETRY   defaults to true here: MLflow 3 otherwise sends usage telemetry to its authors
  none of these              the embedded default: SQLite at CVN_HOME/mlflow.db, artifacts under
                             CVN_HOME/mlartifacts

Why not dagster-mlflow's `mlflow_tracking`: it is a legacy `@resource` made for ops. It opens one MLflow
run per Dagster run, named after the job, through MLflow's process-global active run, so the several
models and ensembles one partition's run materializes would all log into one run; its
`end_mlflow_on_run_finished` hook ends that run at the first op success (dagster#21872); and it imports
MLflow when the code location loads. `MlflowClient` takes the run on every call and holds no global state.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import sqlalchemy as sa

from cvn_assets.core.proxy_economy import PICKED_ON
from cvn_assets.core.secrets import scrub_text, secret_values
from cvn_assets.defs.sweep import Sweep
from cvn_assets.store.engine import cvn_home, redact
from cvn_assets.store.locks import database_lock

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

TRACKING_ENV, REGISTRY_ENV, ARTIFACT_ROOT_ENV, SWITCH_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "CVN_MLFLOW_ARTIFACT_ROOT",
    "CVN_MLFLOW",
)
OFF = ("off", "0", "false", "no")
SERVER_SCHEMES = ("http://", "https://")
HEALTH_TIMEOUT_S = 10
MODEL, ENSEMBLE = "model", "ensemble"  # the kind of a run, and the artifact folder its files are in
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter's value
BATCH = 100  # MLflow takes at most 100 parameters (or tags) per batch


def experiment_name(sweep: str) -> str:
    return f"cvn/{sweep}"


def registered_model_name(sweep: str, crypto: str) -> str:
    """One registered model per sweep and crypto (what is deployed is a model for one instrument)."""
    return f"{sweep}-{crypto}"


def champion_alias(sweep: str, cost_bps: int) -> str:
    return f"{sweep}-{cost_bps}bps-champion"


@dataclass(frozen=True)
class RunRecord:
    """Everything one MLflow run holds, secrets already masked."""

    sweep: str  # the experiment is the sweep's
    name: str
    kind: str  # MODEL or ENSEMBLE: also the artifact folder
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    experiment_id: str
    url: str | None  # the run in the MLflow UI, when the tracking URI is a server
    seconds: float  # wall time spent logging it

    def metadata(self) -> dict[str, Any]:
        return {
            "mlflow_run_id": self.run_id,
            **({"mlflow_run": dg.MetadataValue.url(self.url)} if self.url else {}),
            "mlflow_log_seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class PartitionTags:
    """The tags that find a partition's runs: the sweep's identity, the cell and its data."""

    run_id: str
    crypto: str
    fold_id: str
    data_hash: str

    def tags(self, kind: str | None = None) -> dict[str, str]:
        tags = {"cvn/run_id": self.run_id, "cvn/crypto": self.crypto, "cvn/fold": self.fold_id,
                "cvn/data_hash": self.data_hash}  # fmt: skip
        return tags | ({"cvn/kind": kind} if kind else {})


@dataclass(frozen=True)
class Pick:
    """What the report picked at one cost level, for one crypto: the variant's partition to register."""

    cost_bps: int
    crypto: str
    variant: str
    fold_id: str
    data_hash: str


class TrackingUnavailable(dg.Failure):
    """The tracking store failed: one line naming it (credentials masked) and what to do."""


class MlflowTracking(dg.ConfigurableResource):
    """MLflow through `MlflowClient`: experiments per sweep, one run per materialization, the registry.

    MLflow is imported on first use (it takes seconds), so runs that track nothing never pay for it."""

    enabled: bool = True
    tracking_uri: str = ""
    registry_uri: str = ""
    artifact_root: str = ""  # the experiments' artifact root; empty: the tracking server's own

    # -- the store -------------------------------------------------------------------------------------
    def client(self) -> MlflowClient:
        return _client(self.tracking_uri, self.registry_uri)

    @property
    def is_server(self) -> bool:
        return self.tracking_uri.startswith(SERVER_SCHEMES)

    def experiment_id(self, sweep: str) -> str:
        """The sweep's experiment, created when missing (under a lock on a database store: MLflow's
        migrations and experiment creation race between processes). A store that is down fails the step."""
        key = (self.tracking_uri, self.artifact_root, experiment_name(sweep))
        with _experiments_lock:
            if key not in _experiments:
                with self._failing_step("opening the experiment"):
                    _experiments[key] = self._open_experiment(experiment_name(sweep))
            return _experiments[key]

    def ensure_ready(self, sweep: str) -> None:
        """Reach the store before the work it will record (a model's training), not after."""
        if self.enabled:
            self.experiment_id(sweep)

    def _open_experiment(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        self._check_server()
        with self._schema_lock():
            client = self.client()
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                try:
                    return client.create_experiment(name, artifact_location=self._artifact_location(name))
                except MlflowException as exc:  # created meanwhile by another process (a server: no lock)
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                    experiment = client.get_experiment_by_name(name)
            if experiment.lifecycle_stage == "deleted":  # deleted in the UI: the sweep's runs come back
                client.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id

    def _artifact_location(self, name: str) -> str | None:
        return f"{self.artifact_root.rstrip('/')}/{name}" if self.artifact_root else None

    def _schema_lock(self) -> Any:
        if self.tracking_uri.startswith(("sqlite", "postgresql")):
            return database_lock(self.tracking_uri, "mlflow-schema")
        return nullcontext()

    def _write_lock(self) -> Any:
        # SQLite lets one writer in at a time and fails a transaction that waits too long: the two runs of
        # the embedded default take turns (each run's writes take a fraction of a second).
        if self.tracking_uri.startswith("sqlite"):
            return database_lock(self.tracking_uri, "mlflow-write")
        return nullcontext()

    def _check_server(self) -> None:
        """A server that does not answer fails at once, not after MLflow's minutes of retries."""
        if not self.is_server:
            return
        import requests  # MLflow's own HTTP client: it takes credentials in the URI as MLflow does

        try:
            requests.get(f"{self.tracking_uri.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_S)
        except requests.RequestException as exc:  # any answer (an auth proxy's 401 too) means it is up
            errno = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))  # "[Errno 111] Connection refused"
            raise self._unavailable(
                "reaching the tracking server", errno.group(0) if errno else type(exc).__name__
            ) from None

    @contextmanager
    def _failing_step(self, what: str) -> Iterator[None]:
        import requests
        from mlflow.exceptions import MlflowException

        try:
            yield
        except TrackingUnavailable:
            raise
        except (MlflowException, OSError, requests.RequestException, sa.exc.SQLAlchemyError) as exc:
            raise self._unavailable(what, str(exc)) from None

    def _unavailable(self, what: str, reason: str) -> TrackingUnavailable:
        # The first line of why, with URL credentials and secret values masked.
        shown = scrub_text((reason.strip().splitlines() or [""])[0], secret_values())[:300]
        return TrackingUnavailable(
            description=f"MLflow tracking at {redact_uri(self.tracking_uri)} failed {what} ({shown}); check "
            f"{TRACKING_ENV} and that the server is up, or set {SWITCH_ENV}=off to run without tracking"
        )

    # -- runs ------------------------------------------------------------------------------------------
    def log_run(self, record: RunRecord) -> TrackedRun | None:
        """One finished MLflow run holding `record`; None when tracking is off."""
        if not self.enabled:
            return None
        started = time.perf_counter()
        experiment = self.experiment_id(record.sweep)
        from mlflow.entities import Metric, Param, RunStatus

        with self._failing_step(f"logging the run {record.name}"), self._write_lock():
            client = self.client()
            run_id = client.create_run(experiment, run_name=record.name, tags=record.tags).info.run_id
            try:
                now = int(time.time() * 1000)
                params = [Param(k, v) for k, v in record.params.items()]
                metrics = [Metric(k, v, now, 0) for k, v in record.metrics.items()]
                for i in range(0, max(len(params), len(metrics)), BATCH):
                    client.log_batch(run_id, params=params[i : i + BATCH], metrics=metrics[i : i + BATCH])
                with tempfile.TemporaryDirectory(prefix="cvn-mlflow-") as folder:
                    for name, data in record.files.items():
                        (Path(folder) / name).write_bytes(data)
                    client.log_artifacts(run_id, folder, artifact_path=record.kind)
            except BaseException:
                with contextlib.suppress(Exception):  # the first error is the one to report
                    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
                raise
            client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
        url = (
            f"{_ui_base(self.tracking_uri)}/#/experiments/{experiment}/runs/{run_id}"
            if self.is_server
            else None
        )
        return TrackedRun(run_id, experiment, url, time.perf_counter() - started)

    def latest_runs(self, sweep: str, tags: Mapping[str, str], variants: Sequence[str]) -> dict[str, Run]:
        """The newest finished run of each variant among those carrying `tags` (the history keeps every
        re-materialization; the newest is the one whose rows the results store holds)."""
        filters = [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
        filters.append("attributes.status = 'FINISHED'")
        with self._failing_step("searching runs"):
            runs = self.client().search_runs(
                [self.experiment_id(sweep)],
                " and ".join(filters),
                max_results=1000,
                order_by=["attributes.start_time DESC"],
            )
        newest: dict[str, Run] = {}
        for run in runs:
            newest.setdefault(run.data.tags.get("cvn/variant", ""), run)
        return {v: newest[v] for v in variants if v in newest}

    # -- registry --------------------------------------------------------------------------------------
    def register_champions(self, sweep: Sweep, picks: Sequence[Pick]) -> list[dict[str, Any]]:
        """Per pick: a version of `<sweep>-<crypto>` whose source is the picked partition's newest MLflow
        run (reused when that run is registered already), and the alias `<sweep>-<cost>bps-champion` on
        it, moved there from wherever it pointed. A pick without an MLflow run is listed, not registered."""
        if not self.enabled:
            return []
        rows = []
        for pick in picks:
            partition = PartitionTags(sweep.config.run_id, pick.crypto, pick.fold_id, pick.data_hash)
            run = self.latest_runs(sweep.name, partition.tags(), [pick.variant]).get(pick.variant)
            alias = champion_alias(sweep.name, pick.cost_bps)
            row: dict[str, Any] = {
                "cost_bps": pick.cost_bps,
                "crypto": pick.crypto,
                "variant": pick.variant,
                "fold_id": pick.fold_id,
                "alias": alias,
                "registered_model": None,  # no MLflow run of the pick (tracked while tracking was off?)
                "version": None,
                "model_uri": None,
                "mlflow_run_id": None,
            }
            if run is not None:
                with self._failing_step(f"registering {pick.variant} for {pick.crypto}"):
                    name, version = self._version_of(sweep, pick, run)
                    self.client().set_registered_model_alias(name, alias, version)
                uri = f"models:/{name}@{alias}"
                row |= {"registered_model": name, "version": int(version), "model_uri": uri,
                        "mlflow_run_id": run.info.run_id}  # fmt: skip
            rows.append(row)
        return rows

    def _version_of(self, sweep: Sweep, pick: Pick, run: Run) -> tuple[str, str]:
        from mlflow.exceptions import MlflowException

        client, name = self.client(), registered_model_name(sweep.name, pick.crypto)
        try:
            client.create_registered_model(
                name,
                tags={"cvn/sweep": sweep.name, "cvn/crypto": pick.crypto},
                description=f"The variant the {sweep.name} report picks for {pick.crypto} at each cost "
                f"level: the alias {sweep.name}-<cost>bps-champion.",
            )
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        existing = client.search_model_versions(f"name = '{name}' and run_id = '{run.info.run_id}'")
        if existing:
            return name, existing[0].version
        kind = run.data.tags.get("cvn/kind", MODEL)
        version = client.create_model_version(
            name,
            source=f"{run.info.artifact_uri}/{kind}",
            run_id=run.info.run_id,
            tags={
                "cvn/variant": pick.variant,
                "cvn/fold": pick.fold_id,
                "cvn/run_id": sweep.config.run_id,
                "cvn/kind": kind,
            },
            description=f"{run.info.run_name}: the variant the report picks on validation {PICKED_ON}.",
        )
        return name, version.version


def tracking_from_env(environ: Mapping[str, str] = os.environ) -> MlflowTracking:
    """The resource as the environment configures it (see the module's docstring)."""
    if environ.get(SWITCH_ENV, "").strip().lower() in OFF:
        return MlflowTracking(enabled=False)
    home = cvn_home()
    local_artifacts = (home / "mlartifacts").as_uri()
    if environ.get(TRACKING_ENV):
        uri = environ[TRACKING_ENV]
        root = environ.get(ARTIFACT_ROOT_ENV) or ("" if uri.startswith(SERVER_SCHEMES) else local_artifacts)
        return MlflowTracking(
            tracking_uri=dg.EnvVar(TRACKING_ENV),
            registry_uri=dg.EnvVar(REGISTRY_ENV) if environ.get(REGISTRY_ENV) else "",
            artifact_root=root,
        )
    home.mkdir(parents=True, exist_ok=True)
    return MlflowTracking(
        tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
        artifact_root=environ.get(ARTIFACT_ROOT_ENV) or local_artifacts,
    )


def redact_uri(uri: str) -> str:
    """What may be printed of a tracking URI: a database URL with its password masked, a server's with
    any credentials masked."""
    return scrub_text(uri) if uri.startswith(SERVER_SCHEMES) else redact(uri)


# -- process-wide state ------------------------------------------------------------------------------------
_experiments: dict[tuple[str, str, str], str] = {}
_experiments_lock = threading.Lock()


@functools.cache
def _client(tracking_uri: str, registry_uri: str) -> MlflowClient:
    # MLflow 3 sends usage telemetry to its authors unless told not to: not from a trading team's runs.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient  # seconds to import: only runs that track pay for it

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or None)


def _ui_base(uri: str) -> str:
    """A server's address without any credentials in it: what a link in the Dagster UI may show."""
    parts = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])).rstrip("/")
