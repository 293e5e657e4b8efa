"""Where each training task runs and which device it trains on.

- ``thread``: the tasks share one process, so ``CUDA_VISIBLE_DEVICES`` cannot differ between
  them. Each task leases a device of ``runner.devices`` (``DeviceLease``: the least busy one, in
  turn on ties), hands it to the trainer and gives it back when it ends, failed or not.
- ``ray``: training tasks are submitted with ``remote_options(num_gpus=gpus_per_task)``; Ray
  sets the task's ``CUDA_VISIBLE_DEVICES`` to the GPUs it gave it (``ray.get_gpu_ids()``). A
  local instance offers ``runner.gpus`` GPUs.
- ``dask``: training tasks are submitted under ``dask.annotate(resources={"GPU": ...})``. Each
  worker of a local cluster offers its share of a GPU as that resource and is pinned to the GPU
  (``runtime.dask_gpus``); the workers of a remote cluster declare the resource themselves
  (``dask worker --resources GPU=1``) and bring their own ``CUDA_VISIBLE_DEVICES``.

A task calls ``task_placement`` at its start; the ``Placement`` it yields (host, device, visible
GPUs) is recorded with the run. A run whose ``train.device`` is ``cpu`` stays on the CPU.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixtures.errors import ConfigError, DataError, MixtureError

if TYPE_CHECKING:  # imported where used: a Ray or Dask worker imports this module light
    from configs.schema import RunnerConfig
    from proxies.runs import RunStore
    from proxies.tokens import TokenCorpus

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"
#: The resource name under which Ray and Dask schedule GPUs.
GPU = "GPU"


def absolute_path(path: str | Path) -> str:
    """``path`` made absolute against this process's working directory: paths handed to tasks
    must not depend on the working directory of the process that runs them."""
    return str(Path(path).resolve())


@dataclass(frozen=True)
class Placement:
    """Where one training task runs: ``host``; ``device``, the torch device it trains on (None:
    its config's ``train.device``); ``visible_devices``, the CUDA device ids its process sees
    (None: not restricted by ``CUDA_VISIBLE_DEVICES``)."""

    host: str
    device: str | None = None
    visible_devices: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        visible = None if self.visible_devices is None else list(self.visible_devices)
        return {"host": self.host, "device": self.device, "visible_devices": visible}


class DeviceLease:
    """A thread-safe lease of ``devices`` to the concurrent tasks of one process: ``hold()``
    takes the device with the fewest holders (the next in turn on ties) and gives it back when
    the block ends, also on an exception."""

    def __init__(self, devices: Sequence[str]) -> None:
        if not devices:
            raise ConfigError("a device lease needs at least one device")
        self.devices = tuple(devices)
        self._holders = [0] * len(self.devices)
        self._next = 0
        self._lock = threading.Lock()

    def holders(self) -> dict[str, int]:
        """Device -> how many tasks hold it now."""
        with self._lock:
            return dict(zip(self.devices, self._holders, strict=True))

    @contextmanager
    def hold(self) -> Iterator[str]:
        index = self._take()
        try:
            yield self.devices[index]
        finally:
            with self._lock:
                self._holders[index] -= 1

    def _take(self) -> int:
        with self._lock:
            n = len(self.devices)
            # ``min`` keeps the first of equals: scanning from ``_next`` makes ties round-robin.
            index = min(((self._next + k) % n for k in range(n)), key=lambda i: self._holders[i])
            self._holders[index] += 1
            self._next = (index + 1) % n
            return index


def cuda_device_count() -> int:
    """CUDA devices torch sees (torch imported here, not when a config is loaded)."""
    import torch

    return int(torch.cuda.device_count())


def thread_devices(runner: RunnerConfig) -> list[str]:
    """The devices the thread runner leases: ``runner.devices``, else every CUDA device."""
    if runner.devices is not None:
        return list(runner.devices)
    return [f"cuda:{i}" for i in range(cuda_device_count())]


def local_gpus(runner: RunnerConfig) -> int:
    """GPUs a local Ray instance or Dask cluster offers: ``runner.gpus``, else the CUDA devices
    torch sees."""
    return int(runner.gpus) if runner.gpus is not None else cuda_device_count()


def local_gpu_ids(n: int) -> list[str]:
    """The ids of the first ``n`` GPUs this process may use: from ``CUDA_VISIBLE_DEVICES`` when
    it is set, else 0..n-1."""
    given = os.environ.get(CUDA_VISIBLE_DEVICES)
    if given is None:
        return [str(i) for i in range(n)]
    ids = [g.strip() for g in given.split(",") if g.strip()]
    if len(ids) < n:
        raise ConfigError(
            f"runner.gpus is {n} but {CUDA_VISIBLE_DEVICES}={given!r} names only {len(ids)}"
        )
    return ids[:n]


def dask_worker_share(n_workers: int, gpus: int) -> float:
    """The GPU resource each of ``n_workers`` local workers offers when pinned round-robin to
    ``gpus`` GPUs: 1, or 1/k where up to k workers share a GPU."""
    return 1.0 / math.ceil(n_workers / gpus)


def dask_cluster_kwargs(runner: RunnerConfig) -> dict[str, Any]:
    """``LocalCluster`` arguments for GPUs: each worker offers its share of a GPU as resource
    ``GPU`` and is pinned to that GPU when it starts; nothing without GPUs."""
    gpus = local_gpus(runner)
    if gpus == 0:
        return {}
    from runtime.dask_gpus import PinWorkerGPU

    return {
        "resources": {GPU: dask_worker_share(runner.max_workers, gpus)},
        "plugins": (PinWorkerGPU(local_gpu_ids(gpus)),),
    }


def ray_init_kwargs(runner: RunnerConfig) -> dict[str, Any]:
    """``ray.init`` arguments for GPUs: a local instance offers ``local_gpus`` (0 included, so
    that Ray does not count them itself); a cluster at an address offers its own."""
    return {} if runner.address is not None else {"num_gpus": local_gpus(runner)}


def gpus_per_task(runner: RunnerConfig, offered: float, where: str) -> float:
    """GPUs each training task requests: ``runner.gpus_per_task``, or by default one where
    ``where`` offers GPUs (what it offers, when that is less), none where it offers none.

    ``offered``: the most GPUs one task could get there. A request above it is refused: the
    task would wait forever.
    """
    if runner.gpus_per_task is None:
        return min(1.0, offered)
    if runner.gpus_per_task > offered:
        raise ConfigError(
            f"runner.gpus_per_task is {runner.gpus_per_task:g} but {where} offers at most "
            f"{offered:g} GPUs: no training task could start"
        )
    return runner.gpus_per_task


def _offered_gpus(runner: RunnerConfig) -> tuple[float, str]:
    """(the most GPUs one task can get, where) on the current flow's Ray or Dask runner."""
    if runner.kind == "ray":
        import ray

        return float(ray.cluster_resources().get(GPU, 0.0)), "the Ray cluster"
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    client = getattr(ctx.task_runner, "client", None) if ctx is not None else None
    if client is None:
        raise ConfigError("runner.kind is 'dask' but the flow does not run on a Dask task runner")
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    shares = [float(w.get("resources", {}).get(GPU, 0.0)) for w in workers]
    return max(shares, default=0.0), f"a Dask worker (resource '{GPU}')"


@contextmanager
def submission(runner: RunnerConfig | None) -> Iterator[DeviceLease | None]:
    """The context in which a flow submits training tasks to the runner ``runner`` describes
    (the flow's own): Ray's remote options or Dask's annotation for the GPUs of each task.
    Yields the ``DeviceLease`` that the thread runner's tasks take (None elsewhere, and None
    without devices). ``runner`` None: plain submission, every run on its ``train.device``."""
    if runner is None:
        yield None
        return
    if runner.kind == "thread":
        devices = thread_devices(runner)
        yield DeviceLease(devices) if devices else None
        return
    per_task = gpus_per_task(runner, *_offered_gpus(runner))
    if per_task == 0:
        yield None
    elif runner.kind == "ray":
        from prefect_ray.context import remote_options

        with remote_options(num_gpus=per_task):
            yield None
    else:
        import dask

        with dask.annotate(resources={GPU: per_task}):
            yield None


def _visible_devices() -> tuple[str, ...] | None:
    given = os.environ.get(CUDA_VISIBLE_DEVICES)
    if given is None:
        return None
    return tuple(g.strip() for g in given.split(",") if g.strip())


def _ray_gpu_ids() -> tuple[str, ...] | None:
    """The GPU ids Ray gave the current Ray task; None outside a Ray task."""
    if "ray" not in sys.modules:  # never imported: not a Ray worker
        return None
    import ray

    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return None
    return tuple(str(i) for i in ray.get_gpu_ids())


def _on_pinned_dask_worker() -> bool:
    """Whether this task runs on a Dask worker that ``runtime.dask_gpus`` pinned to a GPU."""
    if "distributed" not in sys.modules:
        return False
    from distributed import get_worker

    from runtime.dask_gpus import PinWorkerGPU

    try:
        worker = get_worker()
    except ValueError:  # not on a worker
        return False
    return PinWorkerGPU.name in worker.plugins


def process_placement(host: str) -> Placement:
    """The placement of a task in a process of its own (Ray or Dask; or no devices to lease):
    a Ray task's GPUs, whose ids it makes its ``CUDA_VISIBLE_DEVICES``; a pinned Dask worker's
    GPU; else the process's own devices (the config's ``train.device``)."""
    ray_ids = _ray_gpu_ids()
    if ray_ids:
        os.environ[CUDA_VISIBLE_DEVICES] = ",".join(ray_ids)
        return Placement(host=host, device="cuda:0", visible_devices=ray_ids)
    if ray_ids is None and _on_pinned_dask_worker():
        return Placement(host=host, device="cuda:0", visible_devices=_visible_devices())
    return Placement(host=host, visible_devices=_visible_devices())


@contextmanager
def task_placement(
    lease: DeviceLease | None = None, *, train_device: str = "auto"
) -> Iterator[Placement]:
    """Where the calling training task runs, for the length of the block: with ``lease`` (the
    thread runner), a leased device, given back when the block ends; else its process's
    (``process_placement``). A run whose ``train_device`` is ``cpu`` takes no device."""
    host = socket.gethostname()
    if train_device == "cpu":
        yield Placement(host=host, visible_devices=_visible_devices())
    elif lease is not None:
        with lease.hold() as device:
            yield Placement(host=host, device=device, visible_devices=_visible_devices())
    else:
        yield process_placement(host)


def open_run_inputs(tokens_dir: str, store_dir: str, *, host: str) -> tuple[TokenCorpus, RunStore]:
    """The corpus and the run store a training task reads and writes, never created here: a
    worker that does not see them at these paths fails with a DataError naming the path and
    ``host``."""
    from proxies.runs import RunStore
    from proxies.tokens import TokenCorpus

    try:
        return TokenCorpus.load(tokens_dir), RunStore(store_dir, create=False)
    except DataError as err:
        raise DataError(
            f"{err} (on host {host}: workers must see the corpus and the experiment folder at "
            "the flow's absolute paths, e.g. on a shared file system)"
        ) from None


def retry_unless_deterministic(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn`` of training tasks: retry what another attempt can fix (a lost
    worker, a file system or network error), not mixopt's own config, data or mixture errors,
    which recur on every attempt."""
    try:
        state.result()
    except (ConfigError, DataError, MixtureError):
        return False
    except Exception:
        return True
    return True
