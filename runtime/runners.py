"""The task runner of the proxy sweep, chosen in the config (``runner:``), not in code.

- ``thread``: Prefect's ThreadPoolTaskRunner on this machine (the default).
- ``dask``: prefect-dask. With ``address``, tasks go to that dask.distributed scheduler;
  without, a LocalCluster of ``max_workers`` processes, one thread each, is started for the flow
  (with GPUs, each worker pinned to one: ``runtime.placement``).
- ``ray``: prefect-ray (imported only when chosen). With ``address``, a running Ray cluster
  (``ray://host:10001`` or ``auto``); without, a local Ray instance offering ``runner.gpus``.

Workers in other processes report to the Prefect API of ``PREFECT_API_URL``: run a server and
export it (see docs/operations.md); without one each worker would start its own temporary server.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from configs.schema import RunnerConfig
from mixtures.errors import ConfigError
from runtime.placement import dask_cluster_kwargs, ray_init_kwargs


def _worker_env(runner: RunnerConfig) -> dict[str, str]:
    # torch reads these at import in each worker process: cap its threads so that n workers on
    # one machine do not each spawn a thread per core and fight over the cores.
    if runner.torch_threads is None:
        return {}
    n = str(runner.torch_threads)
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def _runner_class(kind: str, module: str, name: str, install: str) -> Any:
    """The task-runner class of an optional Prefect integration, imported only when chosen."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as err:
        raise ConfigError(
            f"runner.kind is {kind!r} but {module.replace('_', '-')} is not installed ({err}); "
            f"install it with {install}"
        ) from None


def _dask_runner(runner: RunnerConfig) -> TaskRunner:
    DaskTaskRunner = _runner_class(
        "dask",
        "prefect_dask",
        "DaskTaskRunner",
        "`pip install 'mixopt[scale]'` or `pip install prefect-dask`",
    )
    if runner.address:
        return DaskTaskRunner(address=runner.address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": runner.max_workers,
            # One task per process: a proxy run already uses every torch thread it is given.
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
            "env": _worker_env(runner),
            **dask_cluster_kwargs(runner),
        },
    )


#: Said whenever a local Ray instance is made: ray (2.60) binds its GCS server, raylet and
#: workers to every interface, whatever ``_node_ip_address`` says, and has no authentication.
RAY_LOCAL_WARNING = (
    "runner.kind ray without an address starts a local Ray instance that listens on every "
    "network interface and has no authentication: anyone who can reach this machine can run "
    "code as you while it runs. On a machine reachable from an untrusted network use the thread "
    "runner, or firewall it (docs/operations.md)"
)


def _ray_runner(runner: RunnerConfig) -> TaskRunner:
    RayTaskRunner = _runner_class(
        "ray", "prefect_ray", "RayTaskRunner", "`pip install prefect-ray` (it brings ray)"
    )
    env = _worker_env(runner)
    init_kwargs: dict = {"include_dashboard": False}
    if env:
        init_kwargs["runtime_env"] = {"env_vars": env}
    if runner.address is None:
        init_kwargs["num_cpus"] = runner.max_workers
        logging.getLogger("mixopt").warning(RAY_LOCAL_WARNING)
    init_kwargs.update(ray_init_kwargs(runner))
    return RayTaskRunner(address=runner.address, init_kwargs=init_kwargs)


def make_task_runner(runner: RunnerConfig) -> TaskRunner:
    """The task runner that ``runner`` describes (a new, unstarted instance each call)."""
    if runner.kind == "thread":
        if runner.torch_threads is not None:
            from proxies.train import set_torch_threads

            set_torch_threads(runner.torch_threads)  # one process: torch's pool is shared
        return ThreadPoolTaskRunner(max_workers=runner.max_workers)
    if runner.kind == "dask":
        return _dask_runner(runner)
    if runner.kind == "ray":
        return _ray_runner(runner)
    raise ConfigError(f"runner.kind {runner.kind!r} is unknown; expected thread, dask or ray")
