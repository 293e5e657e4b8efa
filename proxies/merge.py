"""Linear model merging as a mixture proxy: one expert per domain, merged by the mixture.

A shared trunk trains on one mixture for the first ``trunk_fraction`` of the proxy's steps; it
then branches into one expert per training domain, each continuing the same learning-rate
schedule (and the trunk's AdamW state) on its domain alone for the remaining steps. The model
of a candidate mixture w is the weight-space combination sum_i w_i * theta_i of the experts,
evaluated without training: k trainings for k domains, then one evaluation per candidate,
instead of one training per candidate (Berasi et al., "Linear Model Merging Unlocks Simple and
Scalable Multimodal Data Mixture Optimization"; Tao et al., "Merge to Mix").

The experts are one stacked pack (``proxies.pack``), so branching is a repeat of the trunk's
stacked tensors and merging is one contraction of them with the mixtures' weights.

On disk (``MergeStore``), the trunk and each expert are runs like the sweep's: an id hashed from
everything that determines them (``MergeSpec``), their weights, and a JSON record written last.
A rerun loads the trunk (with its optimizer state) and trains only the experts without a
record; expert j's batches come from its own stream, so training a subset of the experts gives
each the weights it gets when all train together.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mixtures.errors import DataError
from mixtures.io import atomic_path
from mixtures.runtable import RunTable
from proxies.batches import MixtureBatcher
from proxies.config import TrainConfig
from proxies.merge_estimates import MERGED, TRUNK_FRACTION, agreement, merged_run_id, merged_table
from proxies.merge_spec import MergeSpec, experts_fingerprint
from proxies.model import count_parameters, initial_model
from proxies.pack import (
    PackedLlama,
    clip_member_grads,
    evaluate_pack,
    make_pack_adamw,
    pack_train_step,
)
from proxies.runs import RunStore
from proxies.tokens import TokenCorpus
from proxies.train import lr_factor, resolve_device, run_seeds, uses_bf16


def merge_members(pack: PackedLlama, weights: np.ndarray) -> PackedLlama:
    """A pack of M merged models from ``pack``'s K members: member m's every parameter is
    ``sum_k weights[m, k] * theta_k``. ``weights``: (M, K), each row a probability vector."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2 or w.shape[1] != pack.size:
        raise DataError(f"merge weights must be (mixtures, {pack.size} experts), got {w.shape}")
    if (w < 0).any() or not np.allclose(w.sum(1), 1.0, atol=1e-6):
        raise DataError("each mixture's merge weights must be >= 0 and sum to 1")
    with torch.no_grad():
        first = pack.p(pack.names[0])
        coeffs = torch.as_tensor(w, dtype=first.dtype, device=first.device)  # (M, K)
        merged = pack.with_params(
            {name: torch.tensordot(coeffs, pack.p(name), dims=1) for name in pack.names}
        )
    return merged


@dataclass(frozen=True)
class Experts:
    """The trained experts (one pack member per training domain, in order) and their cost in
    proxy-run equivalents (training steps over one proxy run's steps)."""

    pack: PackedLlama
    domains: tuple[str, ...]
    cost_runs: float


class _Trainer:
    """The trunk and the branches of one ``MergeSpec`` on one device."""

    def __init__(self, corpus: TokenCorpus, spec: MergeSpec, device: str | None) -> None:
        if spec.corpus not in (experts_fingerprint(corpus, spec.domains), corpus.fingerprint):
            raise DataError(
                f"the experts were specified for corpus {spec.corpus}, "
                f"but the loaded corpus is {corpus.fingerprint}"
            )
        self.spec, self.cfg = spec, spec.train
        self.dev = torch.device(device) if device is not None else resolve_device(self.cfg.device)
        self.autocast = uses_bf16(self.cfg, self.dev)
        self.init, self.data = run_seeds(spec.seed)
        self.arrays = [corpus.array(d, "train") for d in spec.domains]
        self.vocab_size = corpus.vocab_size

    def fresh(self) -> tuple[PackedLlama, torch.optim.AdamW]:
        """The run's initial model (its seed's, as a solo run's) as a pack of one."""
        model = initial_model(self.cfg, vocab_size=self.vocab_size, seed=self.init)
        pack = PackedLlama([model])
        module: nn.Module = pack
        module.to(self.dev)
        return pack, make_pack_adamw(pack, self.cfg)

    def batcher(self, weights: np.ndarray, rng: np.random.Generator) -> MixtureBatcher:
        cfg = self.cfg
        return MixtureBatcher(
            self.arrays, weights, seq_len=cfg.seq_len, batch_size=cfg.batch_size, rng=rng
        )

    def trunk_batcher(self) -> MixtureBatcher:
        return self.batcher(np.asarray(self.spec.trunk_weights), np.random.default_rng(self.data))

    def expert_batcher(self, j: int) -> MixtureBatcher:
        k = len(self.spec.domains)
        return self.batcher(np.eye(k)[j], np.random.default_rng([self.data, j]))

    def run(
        self,
        pack: PackedLlama,
        opt: torch.optim.AdamW,
        batchers: Sequence[MixtureBatcher],
        steps: range,
    ) -> list[float]:
        """Train the pack's members on their batchers for ``steps`` of the schedule; the last
        step's training losses."""
        cfg, total = self.cfg, self.cfg.steps
        module: nn.Module = pack
        module.train()
        losses = torch.full((pack.size,), float("nan"))
        for i in steps:
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(
                    i, total=total, warmup_fraction=cfg.warmup_fraction, min_ratio=cfg.min_lr_ratio
                )
            opt.zero_grad(set_to_none=True)
            batch = torch.stack([b.next() for b in batchers]).to(self.dev)
            losses = pack_train_step(pack, batch, cfg=cfg, autocast=self.autocast)
            if cfg.grad_clip is not None:
                clip_member_grads(pack, cfg.grad_clip)
            opt.step()
        return [float(v) for v in losses.tolist()]


def train_experts(
    corpus: TokenCorpus,
    *,
    train_domains: Sequence[str],
    cfg: TrainConfig,
    seed: int,
    trunk_fraction: float,
    trunk_weights: np.ndarray,
    device: str | None = None,
    log: Callable[[str], None] | None = None,
) -> Experts:
    """A trunk on ``trunk_weights`` for ``trunk_fraction`` of ``cfg.steps``, then one expert per
    domain of ``train_domains`` for the rest of the schedule, in memory (see the module
    docstring; ``train_branches`` keeps them on disk)."""
    if not 0 <= trunk_fraction < 1:
        raise DataError(f"trunk_fraction must be in [0, 1), got {trunk_fraction}")
    spec = MergeSpec(
        corpus=experts_fingerprint(corpus, train_domains),
        domains=tuple(train_domains),
        trunk_weights=tuple(np.asarray(trunk_weights, dtype=float).tolist()),
        trunk_fraction=trunk_fraction,
        train=cfg,
        seed=seed,
    )
    t = _Trainer(corpus, spec, device)
    pack, opt = t.fresh()
    t.run(pack, opt, [t.trunk_batcher()], range(spec.trunk_steps))
    k = len(spec.domains)
    pack.keep([0] * k, opt)  # branch: k copies of the trunk and of its optimizer state
    losses = t.run(pack, opt, [t.expert_batcher(j) for j in range(k)], _branch_steps(spec))
    _check_finite(spec.domains, losses)
    if log is not None:
        log(f"experts trained: {dict(zip(spec.domains, np.round(losses, 3), strict=True))}")
    return Experts(pack=pack, domains=spec.domains, cost_runs=spec.cost_runs)


def _branch_steps(spec: MergeSpec) -> range:
    return range(spec.trunk_steps, spec.train.steps)


def _check_finite(domains: Sequence[str], losses: Sequence[float]) -> None:
    bad = [d for d, v in zip(domains, losses, strict=True) if not math.isfinite(v)]
    if bad:
        raise DataError(
            f"the experts of {bad} diverged (final training loss not finite): no merged "
            "estimate is possible; a lower proxy lr or a larger trunk_fraction may help"
        )


class MergeStore:
    """The trunk and experts of merges under ``root``: per stage run id, ``<id>.pt`` (weights;
    the trunk's with its optimizer state) and ``<id>.json`` (the record, written last, so a
    record means its weights are complete)."""

    def __init__(self, root: str | Path, *, create: bool = True) -> None:
        self.records = RunStore(root, create=create)
        self.root = self.records.root

    def weights(self, run_id: str) -> Path:
        return self.root / f"{run_id}.pt"

    def finished(self, run_id: str) -> dict[str, Any] | None:
        rec = self.records.finished(run_id)
        return rec if rec is not None and self.weights(run_id).exists() else None

    def save(self, record: dict[str, Any], state: dict[str, Any]) -> None:
        with atomic_path(self.weights(record["run_id"]), fsync=True) as tmp:
            torch.save(state, tmp)
        self.records.write(record)

    def load(self, run_id: str) -> dict[str, Any]:
        path = self.weights(run_id)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError) as err:
            raise DataError(f"merge weights {path} cannot be read: {err}") from None


def train_branches(
    corpus: TokenCorpus,
    spec: MergeSpec,
    store: MergeStore,
    *,
    device: str | None = None,
    log: Callable[[str], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> list[tuple[dict[str, Any], bool]]:
    """The trunk and every expert of ``spec`` in ``store``: (record, trained now) per stage,
    trunk first. Finished stages are loaded, not trained; a diverged expert is a DataError
    after the others are saved."""
    say = log or (lambda _msg: None)
    todo = [j for j, d in enumerate(spec.domains) if store.finished(spec.expert_id(d)) is None]
    trunk = store.finished(spec.trunk_id)
    out: list[tuple[dict[str, Any], bool]] = []
    if not todo:
        done = [store.finished(spec.expert_id(d)) for d in spec.domains]
        return [(r, False) for r in [trunk, *done] if r is not None]
    t = _Trainer(corpus, spec, device)
    pack, opt = t.fresh()
    if trunk is None:
        started = time.time()
        losses = t.run(pack, opt, [t.trunk_batcher()], range(spec.trunk_steps))
        trunk = _record(spec, "trunk", None, losses[0], started, pack, extra)
        state = {"params": {n: pack.p(n).detach().cpu() for n in pack.names}}
        store.save(trunk, {**state, "optimizer": opt.state_dict()})
        say(f"trunk {spec.trunk_id} trained: {spec.trunk_steps} steps")
        out.append((trunk, True))
    else:
        saved = store.load(spec.trunk_id)
        with torch.no_grad():
            for name in pack.names:
                pack.p(name).copy_(saved["params"][name])
        opt.load_state_dict(saved["optimizer"])
        out.append((trunk, False))
    pack.keep([0] * len(todo), opt)  # branch: one copy of the trunk per expert to train
    started = time.time()
    losses = t.run(pack, opt, [t.expert_batcher(j) for j in todo], _branch_steps(spec))
    for pos, j in enumerate(todo):
        domain = spec.domains[j]
        if not math.isfinite(losses[pos]):
            continue
        rec = _record(spec, "expert", domain, losses[pos], started, pack, extra)
        store.save(rec, {"params": {n: pack.p(n)[pos].detach().cpu() for n in pack.names}})
        out.append((rec, True))
    _check_finite([spec.domains[j] for j in todo], losses)
    say(f"experts trained: {[spec.domains[j] for j in todo]}")
    trained = {r["run_id"] for r, _ in out}
    earlier = [store.finished(spec.expert_id(d)) for d in spec.domains]
    out += [(r, False) for r in earlier if r is not None and r["run_id"] not in trained]
    return out


def _record(
    spec: MergeSpec,
    stage: str,
    domain: str | None,
    loss: float,
    started: float,
    pack: PackedLlama,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    steps = spec.trunk_steps if stage == "trunk" else spec.train.steps - spec.trunk_steps
    run_id = spec.trunk_id if domain is None else spec.expert_id(domain)
    return {
        "run_id": run_id,
        "stage": stage,
        "domain": domain,
        "spec": spec.model_dump(mode="json"),
        "result": {
            "status": "ok",
            "final_train_loss": loss,
            "steps": steps,
            "tokens": steps * spec.train.seq_len * spec.train.batch_size,
            "wall_seconds": time.time() - started,
            "non_embedding_params": count_parameters(pack.member(0, seq_len=spec.train.seq_len)),
        },
        "finished_at": time.time(),
        **(extra or {}),
    }


def load_experts(
    corpus: TokenCorpus, spec: MergeSpec, store: MergeStore, *, device: str | None = None
) -> Experts:
    """The finished experts of ``spec`` from ``store`` as one pack, in ``spec.domains`` order;
    a DataError names the experts that are not trained yet."""
    missing = [d for d in spec.domains if store.finished(spec.expert_id(d)) is None]
    if missing:
        raise DataError(f"experts not trained yet for {missing} (in {store.root})")
    t = _Trainer(corpus, spec, device)
    template, _ = t.fresh()
    states = [store.load(spec.expert_id(d))["params"] for d in spec.domains]
    params = {n: torch.stack([s[n] for s in states]).to(t.dev) for n in template.names}
    return Experts(
        pack=template.with_params(params), domains=spec.domains, cost_runs=spec.cost_runs
    )


def merged_losses(
    experts: Experts,
    corpus: TokenCorpus,
    mixtures: np.ndarray,
    *,
    eval_domains: Sequence[str],
    cfg: TrainConfig,
    chunk: int = 8,
) -> list[dict[str, float]]:
    """Per mixture (rows of ``mixtures`` over ``experts.domains``), the validation loss per
    domain of the merged model, evaluated as ``proxies.train.evaluate`` does, ``chunk``
    merged models at a time."""
    first = experts.pack.p(experts.pack.names[0])
    out: list[dict[str, float]] = []
    rows = np.asarray(mixtures, dtype=float)
    for start in range(0, len(rows), chunk):
        merged = merge_members(experts.pack, rows[start : start + chunk])
        out.extend(
            evaluate_pack(
                merged,
                corpus,
                eval_domains,
                cfg=cfg,
                device=first.device,
                autocast=uses_bf16(cfg, first.device),
            )
        )
    return out


def estimate_mixtures(
    corpus: TokenCorpus,
    spec: MergeSpec,
    store: MergeStore,
    mixtures: np.ndarray,
    *,
    eval_domains: Sequence[str],
    target: Callable[[dict[str, Any]], float],
    device: str | None = None,
) -> RunTable:
    """The merged estimates of ``mixtures`` (rows over ``spec.domains``) from the trained
    experts in ``store``, as a run table (``merged_table``)."""
    experts = load_experts(corpus, spec, store, device=device)
    losses = merged_losses(experts, corpus, mixtures, eval_domains=eval_domains, cfg=spec.train)
    params = count_parameters(experts.pack.member(0, seq_len=spec.train.seq_len))
    return merged_table(spec, mixtures, losses, target=target, params=params)


__all__ = [
    "MERGED",
    "TRUNK_FRACTION",
    "Experts",
    "MergeSpec",
    "MergeStore",
    "agreement",
    "estimate_mixtures",
    "experts_fingerprint",
    "load_experts",
    "merge_members",
    "merged_losses",
    "merged_run_id",
    "merged_table",
    "train_branches",
    "train_experts",
]
