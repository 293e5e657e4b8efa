"""The worker plugin that pins each worker of a local Dask cluster to one GPU. A module of its
own because it needs ``distributed``, imported only when a local Dask cluster with GPUs is made."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"


class PinWorkerGPU(WorkerPlugin):
    """Sets ``CUDA_VISIBLE_DEVICES`` of a worker process as it starts, before it runs any task
    (and so before torch initialises CUDA there): worker ``i`` of the cluster sees
    ``gpu_ids[i % len(gpu_ids)]`` only, its ``cuda:0``."""

    name = "mixopt-pin-gpu"

    def __init__(self, gpu_ids: Sequence[str]) -> None:
        if not gpu_ids:
            raise ValueError("PinWorkerGPU needs at least one GPU id")
        self.gpu_ids = tuple(gpu_ids)

    def gpu_of(self, worker_name: Any) -> str:
        """The GPU id of the worker named ``worker_name`` (a LocalCluster numbers them 0..n-1)."""
        try:
            index = int(worker_name)
        except (TypeError, ValueError):
            raise ValueError(
                f"a pinned Dask worker must be named by its number, got {worker_name!r}"
            ) from None
        return self.gpu_ids[index % len(self.gpu_ids)]

    def setup(self, worker: Any) -> None:
        os.environ[CUDA_VISIBLE_DEVICES] = self.gpu_of(worker.name)
