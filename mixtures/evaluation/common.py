"""What cross-validation and replay share: input checks and running jobs in processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mixtures.errors import ConfigError, DataError
from mixtures.processes import end_with_parent


def check_table(X: object, y: object, label: str) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (n, d) and ``y`` (n,) as finite float arrays; DataError naming ``label`` if not."""
    arr = np.asarray(X, dtype=float)
    target = np.asarray(y, dtype=float).ravel()
    if arr.ndim != 2 or arr.shape[0] != target.shape[0]:
        raise DataError(f"{label}: X {arr.shape} and y {target.shape} do not match")
    if not (np.all(np.isfinite(arr)) and np.all(np.isfinite(target))):
        raise DataError(f"{label}: weights and targets must be finite")
    return arr, target


def run_jobs(
    fn: Callable[..., Any], jobs: Sequence[dict[str, Any]], shared: dict[str, Any], workers: int
) -> list[Any]:
    """``[fn(**shared, **job) for job in jobs]``, in ``workers`` processes when > 1.

    Processes (spawned, not forked: torch and BLAS thread pools do not survive a fork) rather than
    threads, since the fits hold the GIL between small torch and numpy calls. Each job carries its
    own seed, so the results do not depend on ``workers``.
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    calls = [(fn, {**shared, **job}) for job in jobs]
    if workers == 1 or len(calls) < 2:
        return [_call(c) for c in calls]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    # Workers end with this process, also when it is killed (SIGTERM, SIGKILL): never orphans.
    with ProcessPoolExecutor(
        max_workers=min(workers, len(calls)),
        mp_context=ctx,
        initializer=end_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        return list(pool.map(_call, calls))


def _call(args: tuple[Callable[..., Any], dict[str, Any]]) -> Any:
    fn, kwargs = args
    return fn(**kwargs)
