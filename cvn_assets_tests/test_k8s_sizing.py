"""Sized runs on Kubernetes, offline: the profiles, the choice, the launcher and the step executor.

Everything runs against a real Dagster instance whose run launcher is `SizedK8sRunLauncher` configured
exactly as the Helm values configure it (deploy/helm/values.yaml), with a kubeconfig that points nowhere:
no Kubernetes API is called. Jobs are rendered with dagster-k8s's own `construct_dagster_k8s_job`; where
the launcher creates its Job, a recorder stands in for the cluster's batch API and keeps the body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
import yaml
from dagster._core.definitions.reconstruct import reconstructable  # the origin a run pod re-imports

# Dagster builds these inside a run worker; a test of a step handler builds them itself (as dagster-k8s's
# own tests do), since there is no public constructor for a step's orchestration context.
from dagster._core.execution.api import create_execution_plan
from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import create_context_free_log_manager
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.step_delegating.step_handler.base import StepHandlerContext
from dagster._core.launcher import LaunchRunContext
from dagster._core.test_utils import create_run_for_test
from dagster._grpc.types import ExecuteStepArgs
from dagster_k8s.client import DagsterKubernetesClient
from dagster_k8s.job import USER_DEFINED_K8S_CONFIG_KEY, construct_dagster_k8s_job, get_job_name_from_run_id

from cvn_assets.core.config import DEFAULT_CONFIG_PATH, load_config, parse_config
from cvn_assets.core.errors import ConfigError
from cvn_assets.core.sweep_plan import DataSpan, plan_from_spans
from cvn_assets.core.working_set import GIB, RunShape, WorkingSet
from cvn_assets.definitions import build_definitions
from cvn_assets.defs.data_assets import FIRST_BAR, LAST_BAR
from cvn_assets.defs.executors import (
    SIZED_K8S_EXECUTOR_NAME,
    executor_for,
    executor_tags,
    sized_k8s_job_executor,
)
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.defs.sizing import (
    HEAVY,
    K8S_CONFIG_TAG,
    PROFILE_TAG,
    PROFILES_ENV,
    STANDARD,
    STEP_PROFILE_TAG,
    WORKING_SET_TAG,
    Profiles,
    SizingError,
    memory_bytes,
    profiles_from_env,
    served_sweeps,
)
from cvn_assets.defs.sweep import Sweep
from cvn_assets.run_launcher import SizedK8sRunLauncher

REPO = Path(__file__).resolve().parents[1]
IMAGE = "registry.example.com/cvn-assets:0.1.0"
DEMO_PARTITION = "BTCUSD|f00_2018-08-28"
KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:1"}}],
    "users": [{"name": "offline", "user": {"token": "offline"}}],
    "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
    "current-context": "offline",
}


def minute_sweep(name: str, n_windows: int, years: int) -> dict[str, Any]:
    """A sweep at minute bars with many feature windows: a working set far above the demo's."""
    return {
        "name": name,
        "timeframe": "1m",
        "universe": {"SYNA": {"kind": "synthetic"}},
        "features": {"windows": [5 * (i + 1) for i in range(n_windows)]},
        "labels": {"horizon_bars": 60, "atr_window": 60},
        "folds": {"train": f"{365 * years - 60}d", "validation": "30d", "test": "30d", "max_folds": 1},
        "models": {"xgboost": {}, "lightgbm": {}, "catboost": {}, "logreg": {}},
        "costs_bps": [10],
    }


# A large partition (HEAVY) and one no profile holds.
LARGE = minute_sweep("large", n_windows=20, years=3)
HUGE = minute_sweep("huge", n_windows=40, years=6)
# The same minute sweep over BTC and SYNA on the base feature set, and on the BTC overlay: the overlay
# loads BTC's bars beside SYNA's and fits twice the columns (the old system's OOM at an 8 GiB limit).
PAIR = {"BTCUSD": {"kind": "synthetic"}, "SYNA": {"kind": "synthetic"}}
ON_BASE = minute_sweep("on_base", n_windows=10, years=2) | {"universe": PAIR, "feature_sets": ["base"]}
ON_OVERLAY = minute_sweep("on_overlay", n_windows=10, years=2) | {
    "universe": PAIR,
    "feature_sets": ["btc_overlay"],
}


@dg.op
def train() -> int:
    return 1


@dg.op(tags={K8S_CONFIG_TAG: json.dumps({"container_config": {"resources": {"limits": {"memory": "3Gi"}}}})})
def own_resources(value: int) -> int:
    return value


@dg.job(executor_def=sized_k8s_job_executor({}))  # the sweeps are the test's: see step_job
def stepped() -> None:
    own_resources(train())


class BatchApiRecorder:
    """Stands in for the cluster's Kubernetes batch API: keeps the Jobs the launcher creates."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def create_namespaced_job(self, body: Any, namespace: str, **_: Any) -> None:
        self.jobs.append(body)


@pytest.fixture
def sweeps_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "sweeps"
    directory.mkdir()
    (directory / "demo.yaml").write_text(DEFAULT_CONFIG_PATH.read_text())
    for raw in (LARGE, HUGE, ON_BASE, ON_OVERLAY):
        (directory / f"{raw['name']}.yaml").write_text(yaml.safe_dump(raw))
    return directory


def helm_launcher_config(kubeconfig: Path, sweeps: Path) -> dict[str, Any]:
    """The launcher's config from the Helm values, made offline: a kubeconfig pointing nowhere, an image
    (in the cluster it comes from the code location), the test's sweeps."""
    values = yaml.safe_load((REPO / "deploy/helm/values.yaml").read_text())
    custom = values["runLauncher"]["config"]["customRunLauncher"]
    assert (custom["module"], custom["class"]) == ("cvn_assets.run_launcher", "SizedK8sRunLauncher")
    assert values["runLauncher"]["type"] == "CustomRunLauncher"
    return {
        **custom["config"],
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig),
        "job_image": IMAGE,
        "sweeps_dir": str(sweeps),
    }


@pytest.fixture
def instance(
    tmp_path: Path, sweeps_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(KUBECONFIG))
    # What the chart sets in the daemon's environment, read by the launcher's config ({env: ...}).
    monkeypatch.setenv("DAGSTER_K8S_PIPELINE_RUN_NAMESPACE", "dagster")
    monkeypatch.setenv("DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP", "dagster-pipeline-env")
    monkeypatch.setenv("DAGSTER_HOME", "/opt/dagster/dagster_home")
    launcher = {
        "module": "cvn_assets.run_launcher",
        "class": "SizedK8sRunLauncher",
        "config": helm_launcher_config(kubeconfig, sweeps_dir),
    }
    with dg.instance_for_test(overrides={"run_launcher": launcher}) as inst:
        yield inst


def recorder_on(launcher: SizedK8sRunLauncher) -> BatchApiRecorder:
    recorder = BatchApiRecorder()
    launcher._api_client = DagsterKubernetesClient.production_client(
        batch_api_override=recorder
    )  # the cluster
    return recorder


def record_bars(instance: dg.DagsterInstance, sweep: str, crypto: str, first: str, last: str) -> None:
    """What a sweep's `ohlcv` materialization records of its bars (for sweeps too large to load here)."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=dg.AssetKey([sweep, "ohlcv"]),
            partition=crypto,
            metadata={FIRST_BAR: first, LAST_BAR: last},
        )
    )


def minute_partition(instance: dg.DagsterInstance, raw: dict[str, Any]) -> str:
    """The sweep's bars (every crypto of its universe) recorded from 1 Jan 2019 for as long as its fold
    needs, and the key of SYNA's partition of that fold."""
    cfg = parse_config(raw)
    first = pd.Timestamp("2019-01-01T00:00Z")
    last = first + pd.Timedelta(days=int(cfg.folds.train[:-1]) + 60 + 2)
    for crypto in cfg.cryptos:
        record_bars(instance, cfg.name, crypto, str(first), str(last))
    plan = plan_from_spans(cfg, {crypto: DataSpan(first, last) for crypto in cfg.cryptos})
    return f"SYNA|{plan.fold_ids[-1]}"


def load_demo_bars(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """The demo's BTCUSD bars, materialized for real: the instance records what the estimate reads."""
    store = ResultsStore(database_url=f"sqlite:///{tmp_path / 'results.db'}")
    defs = build_definitions([load_config()], artifacts_dir=tmp_path / "artifacts", results_store=store)
    job = defs.resolve_job_def(Sweep.of(load_config()).keys.ohlcv_job)
    assert job.execute_in_process(partition_key="BTCUSD", instance=instance).success


def a_run(instance: dg.DagsterInstance, tags: dict[str, str], **kwargs: Any) -> dg.DagsterRun:
    return create_run_for_test(
        instance,
        job_name="stepped",
        tags=tags,
        job_code_origin=reconstructable(stepped).get_python_origin(),
        **kwargs,
    )


def run_job(launcher: SizedK8sRunLauncher, run: dg.DagsterRun) -> Any:
    """The run worker's Job as the launcher would create it, rendered offline."""
    context = launcher.get_container_context_for_run(run)
    return construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image=None, run_launcher=launcher),
        args=["dagster", "api", "execute_run"],
        job_name=get_job_name_from_run_id(run.run_id),
        user_defined_k8s_config=context.run_k8s_config,
        component="run_worker",
    )


def resources_of(job: Any) -> dict[str, Any]:
    resources = job.spec.template.spec.containers[0].resources.to_dict()
    return {k: v for k, v in resources.items() if v}


def secrets_of(job: Any) -> set[str]:
    return {e.secret_ref.name for e in job.spec.template.spec.containers[0].env_from or [] if e.secret_ref}


def assert_non_root(job: Any) -> None:
    pod, container = job.spec.template.spec, job.spec.template.spec.containers[0]
    assert pod.security_context.run_as_non_root and pod.security_context.run_as_user == 10001
    assert pod.security_context.fs_group == 10001
    assert container.security_context.run_as_non_root and container.security_context.run_as_user == 10001
    assert container.security_context.allow_privilege_escalation is False
    assert container.security_context.capabilities.drop == ["ALL"]


def working_set_of(gib: float) -> WorkingSet:
    return WorkingSet(RunShape(0, 0, 0, 0, 17), int(gib * GIB), 0, 0, 0, 0, 0)


# --- profiles ----------------------------------------------------------------------------------------


def test_memory_quantities_and_the_tag() -> None:
    assert K8S_CONFIG_TAG == USER_DEFINED_K8S_CONFIG_KEY
    assert memory_bytes("8Gi") == 8 * GIB and memory_bytes("512Mi") == 512 * 2**20
    assert memory_bytes("8G") == 8_000_000_000 and memory_bytes("1000") == 1000
    with pytest.raises(ValueError, match="8 gigs"):
        memory_bytes("8 gigs")


def test_the_smallest_profile_that_holds_the_estimate_with_headroom() -> None:
    profiles = Profiles()
    assert [p.name for p in profiles.profiles] == ["STANDARD", "HEAVY"]
    assert (STANDARD.memory_limit, HEAVY.memory_limit) == (8 * GIB, 24 * GIB)
    assert profiles.choose(working_set_of(6.0), "p") == STANDARD  # 7.5 GiB with 25% headroom
    assert profiles.choose(working_set_of(6.5), "p") == HEAVY  # 8.1 GiB: over STANDARD's limit
    with pytest.raises(SizingError) as refused:
        profiles.choose(working_set_of(20.0), "sweep big partition SYNA|f000")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("sweep big partition SYNA|f000: estimated working set 20.0 GiB, 25.0 GiB with")
    assert (
        f"the largest profile HEAVY (24Gi); add a profile with a memory limit of at least 25Gi to {PROFILES_ENV}"
        in message
    )


def test_profiles_are_configurable_from_the_environment() -> None:
    xl = {"name": "XL", "requests": {"cpu": "4", "memory": "64Gi"}, "limits": {"memory": "64Gi"}}
    small = {"name": "SMALL", "requests": {"memory": "2Gi"}, "limits": {"memory": "2Gi"}}
    profiles = profiles_from_env({PROFILES_ENV: json.dumps({"headroom": 0.5, "profiles": [xl, small]})})
    assert [p.name for p in profiles.profiles] == ["SMALL", "XL"] and profiles.headroom == 0.5
    assert profiles.choose(working_set_of(1.5), "p").name == "XL"  # 2.25 GiB with 50% headroom
    assert profiles.choose(working_set_of(20.0), "p").k8s_config() == {
        "container_config": {"resources": {"requests": xl["requests"], "limits": xl["limits"]}}
    }
    assert profiles_from_env({}) == Profiles()
    for bad, named in (
        ("{not json", f"{PROFILES_ENV} is not valid JSON"),
        (json.dumps({"profiles": []}), f"{PROFILES_ENV}: expected"),
        (json.dumps({"profiles": [{"name": "X", "limits": {}}]}), "profiles[0] (X): needs limits.memory"),
        (json.dumps({"profiles": [{"name": "X", "limits": {"memory": "lots"}}]}), "limits.memory: 'lots'"),
        (json.dumps({"profiles": [small], "headroom": -1}), "headroom must be a number >= 0"),
    ):
        with pytest.raises(
            SizingError, match=named.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
        ):
            profiles_from_env({PROFILES_ENV: bad})


# --- the executor's configuration ---------------------------------------------------------------------


def test_dagster_validates_the_sized_executors_configuration() -> None:
    config = {
        "job_image": IMAGE,
        "env_secrets": ["cvn-results-db", "cvn-artifacts"],
        "max_concurrent": 4,
        "step_k8s_config": {"container_config": {"resources": {"requests": {"cpu": "1"}}}},
        "per_step_k8s_config": {"train": {"container_config": {"resources": {"limits": {"memory": "2Gi"}}}}},
    }
    validated = dg.validate_run_config(stepped, {"execution": {"config": config}})
    assert validated["execution"][SIZED_K8S_EXECUTOR_NAME]["env_secrets"] == [
        "cvn-results-db",
        "cvn-artifacts",
    ]
    assert stepped.executor_def.name == SIZED_K8S_EXECUTOR_NAME
    with pytest.raises(dg.DagsterInvalidConfigError, match="memory_limit"):
        dg.validate_run_config(stepped, {"execution": {"config": {"memory_limit": "8Gi"}}})
    assert executor_for("in_process", {}) is dg.in_process_executor
    assert executor_for("k8s_job", {}).name == SIZED_K8S_EXECUTOR_NAME
    with pytest.raises(ValueError, match="unknown executor 'celery'"):
        executor_for("celery", {})  # type: ignore[arg-type]


def test_operations_executor_chooses_the_crypto_fold_jobs_executor(tmp_path: Path) -> None:
    """`operations.executor: k8s_job` gives the sweep's crypto x fold job the sized step executor and the
    tag the launcher reads; the default keeps every step in the run's process, with no tag. The other jobs
    keep the code location's in-process executor either way."""
    stepped_sweep = parse_config({**LARGE, "operations": {"executor": "k8s_job"}})
    default_sweep = parse_config({**LARGE, "name": "plain"})
    store = ResultsStore(database_url=f"sqlite:///{tmp_path / 'results.db'}")
    defs = build_definitions([stepped_sweep, default_sweep], artifacts_dir=tmp_path, results_store=store)
    stepped_keys, default_keys = Sweep.of(stepped_sweep).keys, Sweep.of(default_sweep).keys
    sized = defs.resolve_job_def(stepped_keys.sweep_job)
    assert sized.executor_def.name == SIZED_K8S_EXECUTOR_NAME
    assert sized.tags["cvn/executor"] == "k8s_job"
    assert defs.resolve_job_def(stepped_keys.ohlcv_job).executor_def is dg.in_process_executor
    plain = defs.resolve_job_def(default_keys.sweep_job)
    assert plain.executor_def is dg.in_process_executor
    assert "cvn/executor" not in plain.tags
    with pytest.raises(ConfigError, match="operations.executor"):
        parse_config({**LARGE, "operations": {"executor": "celery"}})


# --- runs --------------------------------------------------------------------------------------------


def test_the_demo_partitions_run_is_standard_with_image_secrets_and_non_root(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    load_demo_bars(instance, tmp_path)
    launcher = instance.run_launcher
    assert isinstance(launcher, SizedK8sRunLauncher)
    run = a_run(instance, {"cvn/sweep": "demo", "dagster/partition": DEMO_PARTITION})
    sized = launcher.sized(run)
    assert sized.tags[PROFILE_TAG] == "STANDARD"
    assert json.loads(sized.tags[K8S_CONFIG_TAG]) == STANDARD.k8s_config()
    assert 0.3 < float(sized.tags[WORKING_SET_TAG]) < 1.0  # the demo: mostly the libraries
    assert instance.get_run_by_id(run.run_id).tags[PROFILE_TAG] == "STANDARD"  # stored on the run
    job = run_job(launcher, sized)
    assert resources_of(job) == {"requests": {"cpu": "1", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}
    assert job.spec.template.spec.containers[0].image == IMAGE
    assert secrets_of(job) == {"cvn-results-db", "cvn-artifacts", "cvn-mlflow"}
    assert job.spec.template.spec.service_account_name == "dagster"
    assert_non_root(job)


def test_launch_run_creates_the_sized_job_and_keeps_a_persons_config(instance: dg.DagsterInstance) -> None:
    partition = minute_partition(instance, LARGE)
    launcher = instance.run_launcher
    recorder = recorder_on(launcher)
    # The sweep found from the assets the run selected (a UI materialization carries no cvn/sweep tag).
    run = a_run(
        instance,
        {"dagster/partition": partition},
        asset_selection=frozenset({dg.AssetKey(["large", "features", "base_features"])}),
    )
    launcher.launch_run(LaunchRunContext(run, None))
    (job,) = recorder.jobs
    assert resources_of(job) == {"requests": {"cpu": "2", "memory": "24Gi"}, "limits": {"memory": "24Gi"}}
    assert instance.get_run_by_id(run.run_id).tags[PROFILE_TAG] == "HEAVY"
    assert_non_root(job)

    mine = {"container_config": {"resources": {"limits": {"memory": "64Gi"}}}}
    run = a_run(
        instance, {"cvn/sweep": "large", "dagster/partition": partition, K8S_CONFIG_TAG: json.dumps(mine)}
    )
    launcher.launch_run(LaunchRunContext(run, None))
    # The person's limit, over the launcher's default resources (Dagster merges them deeply).
    assert resources_of(recorder.jobs[-1])["limits"] == {"memory": "64Gi"}
    tags = instance.get_run_by_id(run.run_id).tags
    assert json.loads(tags[K8S_CONFIG_TAG]) == mine and PROFILE_TAG not in tags and WORKING_SET_TAG in tags


def test_the_btc_overlay_runs_heavy_where_the_same_partition_on_base_stays_standard(
    instance: dg.DagsterInstance,
) -> None:
    launcher = instance.run_launcher
    rendered = {}
    for raw in (ON_BASE, ON_OVERLAY):
        partition = minute_partition(instance, raw)
        sized = launcher.sized(a_run(instance, {"cvn/sweep": raw["name"], "dagster/partition": partition}))
        rendered[raw["name"]] = (float(sized.tags[WORKING_SET_TAG]), resources_of(run_job(launcher, sized)))
    (base_gib, base_job), (overlay_gib, overlay_job) = rendered["on_base"], rendered["on_overlay"]
    assert base_job["limits"] == {"memory": "8Gi"} and overlay_job["limits"] == {"memory": "24Gi"}
    assert 1.6 < overlay_gib / base_gib < 2.1  # about twice: two series, twice the columns


def test_a_reexecuted_run_is_sized_again_and_other_locations_keep_the_launchers_resources(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    load_demo_bars(instance, tmp_path)
    launcher = instance.run_launcher
    recorder = recorder_on(launcher)
    copied = {K8S_CONFIG_TAG: json.dumps(HEAVY.k8s_config()), PROFILE_TAG: "HEAVY"}  # from its parent run
    run = a_run(instance, {"cvn/sweep": "demo", "dagster/partition": DEMO_PARTITION, **copied})
    launcher.launch_run(LaunchRunContext(run, None))
    assert resources_of(recorder.jobs[-1])["limits"] == {"memory": "8Gi"}
    assert instance.get_run_by_id(run.run_id).tags[PROFILE_TAG] == "STANDARD"

    other = a_run(instance, {"team": "elsewhere"})
    launcher.launch_run(LaunchRunContext(other, None))
    assert resources_of(recorder.jobs[-1]) == {"requests": {"cpu": "1"}, "limits": {"memory": "8Gi"}}
    assert PROFILE_TAG not in instance.get_run_by_id(other.run_id).tags


def test_a_partition_over_the_largest_profile_is_refused_before_it_starts(
    instance: dg.DagsterInstance,
) -> None:
    partition = minute_partition(instance, HUGE)
    launcher = instance.run_launcher
    recorder = recorder_on(launcher)
    run = a_run(instance, {"cvn/sweep": "huge", "dagster/partition": partition})
    with pytest.raises(SizingError) as refused:
        launcher.launch_run(LaunchRunContext(run, None))
    message = str(refused.value)
    assert "\n" not in message and f"sweep huge partition {partition}: estimated working set " in message
    assert (
        "exceeds the largest profile HEAVY (24Gi); add a profile with a memory limit of at least" in message
    )
    assert recorder.jobs == []
    failed = instance.get_run_by_id(run.run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    failure = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    assert message in failure[0].event_log_entry.message


# --- steps -------------------------------------------------------------------------------------------


def step_job(
    instance: dg.DagsterInstance, run: dg.DagsterRun, step: str, executor_config: dict[str, Any], sweeps: Path
) -> Any:
    """A step's Job as the sized executor's handler builds it in the run pod, rendered offline. The
    executor is built for the test's sweeps, as the code location builds it for its own."""
    job = reconstructable(stepped)
    validated = dg.validate_run_config(stepped, {"execution": {"config": executor_config}})["execution"]
    config = validated[SIZED_K8S_EXECUTOR_NAME]
    executor_def = sized_k8s_job_executor(served_sweeps(sweeps))
    executor = executor_def.executor_creation_fn(
        dg.InitExecutorContext(job=job, executor_def=executor_def, executor_config=config, instance=instance)
    )
    plan = create_execution_plan(job)
    plan_context = PlanOrchestrationContext(
        plan_data=PlanData(job, run, instance, plan, raise_on_error=True, retry_mode=RetryMode.DISABLED),
        log_manager=create_context_free_log_manager(instance, run),
        executor=executor,
        output_capture=None,
    )
    context = StepHandlerContext(
        instance, plan_context, plan.steps, ExecuteStepArgs(job.get_python_origin(), run.run_id, [step]), run
    )
    handler = executor._step_handler
    container_context = handler._get_container_context(context)
    return construct_dagster_k8s_job(
        job_config=container_context.get_k8s_job_config(handler._executor_image, instance.run_launcher),
        args=["dagster", "api", "execute_step"],
        job_name=f"dagster-step-{step}",
        user_defined_k8s_config=container_context.run_k8s_config,
        component="step_worker",
    )


def test_each_step_pod_carries_its_runs_sizing(instance: dg.DagsterInstance, sweeps_dir: Path) -> None:
    partition = minute_partition(instance, LARGE)
    executor_config = {"job_image": IMAGE, "env_secrets": ["cvn-step-extra"]}
    # A run of a job whose steps run in pods: its own pod only orchestrates (the smallest profile), and
    # each step pod gets the partition's.
    tags = {"cvn/sweep": "large", "dagster/partition": partition, **executor_tags("k8s_job")}
    run = instance.run_launcher.sized(a_run(instance, tags))
    assert (run.tags[PROFILE_TAG], run.tags[STEP_PROFILE_TAG]) == ("STANDARD", "HEAVY")
    assert resources_of(run_job(instance.run_launcher, run))["limits"] == {"memory": "8Gi"}
    job = step_job(instance, run, "train", executor_config, sweeps_dir)
    assert resources_of(job) == {"requests": {"cpu": "2", "memory": "24Gi"}, "limits": {"memory": "24Gi"}}
    assert job.spec.template.spec.containers[0].image == IMAGE
    assert secrets_of(job) == {"cvn-results-db", "cvn-artifacts", "cvn-mlflow", "cvn-step-extra"}
    assert job.metadata.labels["app.kubernetes.io/component"] == "step_worker"
    assert_non_root(job)
    # An op that sets its own resources keeps them.
    assert resources_of(step_job(instance, run, "own_resources", executor_config, sweeps_dir)) == {
        "requests": {"cpu": "1"},  # the launcher's default beside the op's own limit
        "limits": {"memory": "3Gi"},
    }
    # A run sized for one pod (in-process steps): a step takes the run's resources.
    whole = instance.run_launcher.sized(
        a_run(instance, {"cvn/sweep": "large", "dagster/partition": partition})
    )
    assert STEP_PROFILE_TAG not in whole.tags
    assert resources_of(step_job(instance, whole, "train", executor_config, sweeps_dir))["limits"] == {
        "memory": "24Gi"
    }
    # A run launched without a sizing tag (another launcher): the steps are sized from the estimate.
    bare = a_run(instance, {"cvn/sweep": "large", "dagster/partition": partition})
    assert resources_of(step_job(instance, bare, "train", executor_config, sweeps_dir))["limits"] == {
        "memory": "24Gi"
    }
