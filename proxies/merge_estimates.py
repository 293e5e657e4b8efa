"""Merged estimates as a run table, without torch: one row per mixture whose merged model was
evaluated (``proxies.merge``), its id, and how the estimates rank trained runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mixtures.errors import DataError
from mixtures.evaluation import score
from mixtures.runtable import RunTable
from proxies.merge_spec import MergeSpec, digest
from proxies.records import METRIC_PREFIX
from proxies.runs import WEIGHT_DECIMALS

#: Fidelity columns of a merged-estimate run table beside the trained runs' (model_params,
#: tokens): ``merged`` is 1 for every row, ``trunk_fraction`` the experts' shared share.
MERGED = "merged"
TRUNK_FRACTION = "trunk_fraction"


def merged_table(
    spec: MergeSpec,
    mixtures: np.ndarray,
    losses: Sequence[dict[str, float]],
    *,
    target: Callable[[dict[str, Any]], float],
    params: int,
) -> RunTable:
    """The merged estimates as a run table: one row per mixture (rows over ``spec.domains``),
    ``target`` and ``val_loss/<domain>`` metrics, fidelity as the trained runs' (model_params,
    tokens) plus ``merged`` = 1 and the ``trunk_fraction``. A row's id hashes the experts and
    the mixture."""
    w = np.asarray(mixtures, dtype=float)
    if w.ndim != 2 or w.shape[1] != len(spec.domains):
        raise DataError(
            f"merged mixtures must be over the experts' {len(spec.domains)} domains "
            f"{list(spec.domains)}, got shape {w.shape}"
        )
    if len(losses) != len(w):
        raise DataError(f"{len(losses)} merged losses for {len(w)} mixtures")
    ids = [merged_run_id(spec, row) for row in w]
    domains = sorted(losses[0])
    metrics = {"target": np.array([target({"val_loss": v}) for v in losses])}
    for d in domains:
        metrics[METRIC_PREFIX + d] = np.array([v[d] for v in losses])
    n = len(w)
    fidelity = {
        "model_params": np.full(n, float(params)),
        "tokens": np.full(n, float(spec.train.train_tokens)),
        MERGED: np.ones(n),
        TRUNK_FRACTION: np.full(n, spec.trunk_fraction),
    }
    return RunTable.from_arrays(ids, list(spec.domains), w, metrics, fidelity=fidelity)


def merged_run_id(spec: MergeSpec, weights: np.ndarray) -> str:
    """The id of the merged estimate of one mixture (a row over ``spec.domains``)."""
    rounded = np.round(np.asarray(weights, dtype=float), WEIGHT_DECIMALS).tolist()
    return digest({"merge": spec.merge_id, "weights": rounded})


def agreement(
    spec: MergeSpec, merged: RunTable, trained: RunTable, *, metric: str = "target"
) -> dict[str, Any]:
    """How the merged estimates rank the trained runs: ``score`` (Spearman, Pearson, MAE) of
    ``merged``'s ``metric`` at each trained run's mixture against the run's own, over the
    trained runs whose mixture was estimated (``runs``)."""
    rows = trained.weights(spec.domains)
    by_id = dict(zip(merged.run_ids, merged.target(metric), strict=True))
    pairs = [
        (y, by_id[key])
        for key, y in zip(
            (merged_run_id(spec, r) for r in rows), trained.target(metric), strict=True
        )
        if key in by_id
    ]
    if len(pairs) < 2:
        return {"runs": len(pairs), "spearman": None, "pearson": None, "mae": None}
    truth, estimate = (np.array(v) for v in zip(*pairs, strict=True))
    return {"runs": len(pairs), **score(truth, estimate)}
