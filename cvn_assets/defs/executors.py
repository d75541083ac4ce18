"""The executor a sweep's jobs run with: every step in the run's process (the default), or one Kubernetes
pod per step for sweeps too large for one pod, each step sized from its partition's estimate.

dagster-k8s's `k8s_job_executor` gives each step pod the executor's `step_k8s_config`, then the op's own
`dagster-k8s/config` tag, then `per_step_k8s_config[op]`; it never passes the run's `dagster-k8s/config`
down (`K8sStepHandler._get_container_context`, `include_run_tags=False`), and an op's tags are fixed when
the code loads, so nothing there can follow the partition. `sized_k8s_job_executor` is that executor, with
the same configuration, whose step handler gives every step pod the partition's resources: the
`cvn/step_k8s_config` the sized launcher put on the run (`SizedK8sRunLauncher`; the run pod itself, which
then only orchestrates, gets the smallest profile), else the run's `dagster-k8s/config`, else the profile
the partition's estimate picks (`defs/sizing.py`). An op's own tag or a `per_step_k8s_config` entry that
sets resources still wins for that step. A job run with it carries `executor_tags("k8s_job")`, which is how
the launcher knows its run pod only orchestrates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg

from cvn_assets.defs import sizing
from cvn_assets.defs.sweep import Sweep

if TYPE_CHECKING:
    from dagster_k8s.executor import K8sStepHandler

ExecutorKind = Literal["in_process", "k8s_job"]
EXECUTOR_KINDS: tuple[ExecutorKind, ...] = ("in_process", "k8s_job")
SIZED_K8S_EXECUTOR_NAME = "cvn_sized_k8s"
# What dagster-k8s's own executor requires (`multiple_process_executor_requirements`), spelled with the
# public enum.
_STEP_POD_REQUIREMENTS = [
    dg.ExecutorRequirement.RECONSTRUCTABLE_JOB,
    dg.ExecutorRequirement.NON_EPHEMERAL_INSTANCE,
    dg.ExecutorRequirement.PERSISTENT_OUTPUTS,
]


def _resources(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return (config.get("container_config") or {}).get("resources") or {}


@cache
def sized_step_handler_class() -> type[K8sStepHandler]:
    """dagster-k8s's step handler, adding the run's resources to every step pod. Built on first use: a
    sweep whose steps run in process never imports the Kubernetes client (60 MB in every run worker)."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.executor import K8sStepHandler
    from dagster_k8s.job import UserDefinedDagsterK8sConfig, get_user_defined_k8s_config

    class SizedK8sStepHandler(K8sStepHandler):
        sweeps: Mapping[str, Sweep]
        _by_run: dict[str, Mapping[str, Any]]

        @classmethod
        def adopting(cls, handler: K8sStepHandler, sweeps: Mapping[str, Sweep]) -> SizedK8sStepHandler:
            """The handler dagster-k8s built from the executor's config (clients, container context,
            per-step config), now sizing each step."""
            sized = cls.__new__(cls)
            sized.__dict__.update(vars(handler))
            sized.sweeps = sweeps
            sized._by_run = {}
            return sized

        def run_resources(self, instance: dg.DagsterInstance, run: dg.DagsterRun) -> Mapping[str, Any]:
            """The resources the partition's work needs: the launcher's step sizing on the run, else the
            run's `dagster-k8s/config` (a person's, or the launcher's for a run it sized for one pod),
            else the profile its partition's estimate picks; {} for a run of no served sweep. Raises
            SizingError when the partition fits no profile."""
            if run.run_id not in self._by_run:
                tag = run.tags.get(sizing.STEP_K8S_CONFIG_TAG) or run.tags.get(sizing.K8S_CONFIG_TAG, "{}")
                resources = _resources(json.loads(tag))
                if not resources:
                    found = sizing.size_run(instance, run, self.sweeps, sizing.profiles_from_env())
                    resources = _resources(found.k8s_config) if found else {}
                self._by_run[run.run_id] = resources
            return self._by_run[run.run_id]

        def _get_container_context(self, step_handler_context: Any) -> K8sContainerContext:
            context = super()._get_container_context(step_handler_context)
            step_key = self._get_step_key(step_handler_context)
            op_name = step_handler_context.get_step_context(step_key).step.op_name
            own = get_user_defined_k8s_config(step_handler_context.step_tags[step_key]).container_config
            if own.get("resources") or _resources(self._per_step_k8s_config.get(op_name, {})):
                return context  # the op's own resources
            resources = self.run_resources(step_handler_context.instance, step_handler_context.dagster_run)
            if not resources:
                return context
            sized = UserDefinedDagsterK8sConfig(container_config={"resources": resources})
            return context.merge(K8sContainerContext(run_k8s_config=sized))

    return SizedK8sStepHandler


def sized_k8s_job_executor(sweeps: Mapping[str, Sweep]) -> dg.ExecutorDefinition:
    """`k8s_job_executor` (the same configuration: `job_image`, `env_secrets`, `step_k8s_config`,
    `per_step_k8s_config`, `max_concurrent`, ...) whose step pods carry their run's sizing."""
    from dagster_k8s import k8s_job_executor

    @dg.executor(
        name=SIZED_K8S_EXECUTOR_NAME,
        config_schema=k8s_job_executor.config_schema,
        requirements=_STEP_POD_REQUIREMENTS,
    )
    def _sized(init_context: dg.InitExecutorContext) -> dg.Executor:
        executor = k8s_job_executor.executor_creation_fn(init_context)
        # StepDelegatingExecutor has no public way to hand it a step handler, and dagster-k8s builds its
        # handler inside the executor function: the sized handler takes over the one it built.
        built = executor._step_handler  # type: ignore[attr-defined]
        executor._step_handler = sized_step_handler_class().adopting(built, sweeps)  # type: ignore[attr-defined]
        return executor

    return _sized


def executor_tags(kind: ExecutorKind) -> dict[str, str]:
    """Tags for a sweep's jobs run with this executor: with `k8s_job` they tell the sized launcher that the
    run pod only orchestrates (it gets the smallest profile; the step pods get the partition's). None for
    `in_process`, the default: a run with no tag runs its steps in its own process."""
    return {sizing.EXECUTOR_TAG: kind} if kind != "in_process" else {}


def executor_for(kind: ExecutorKind, sweeps: Mapping[str, Sweep]) -> dg.ExecutorDefinition:
    """The executor a sweep's jobs run with: `in_process` (every step in the run's process: the model
    libraries are imported once per run) or `k8s_job` (one sized pod per step, for large sweeps)."""
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "k8s_job":
        return sized_k8s_job_executor(sweeps)
    raise ValueError(f"unknown executor '{kind}': one of {EXECUTOR_KINDS}")
