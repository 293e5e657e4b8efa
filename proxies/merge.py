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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mixtures.errors import DataError
from proxies.batches import MixtureBatcher
from proxies.config import TrainConfig
from proxies.model import build_model
from proxies.pack import (
    PackedLlama,
    clip_member_grads,
    evaluate_pack,
    make_pack_adamw,
    pack_train_step,
)
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
    domain of ``train_domains`` for the rest of the schedule (see the module docstring)."""
    if not 0 <= trunk_fraction < 1:
        raise DataError(f"trunk_fraction must be in [0, 1), got {trunk_fraction}")
    dev = torch.device(device) if device is not None else resolve_device(cfg.device)
    autocast = uses_bf16(cfg, dev)
    init, data = run_seeds(seed)
    total = cfg.steps
    trunk_steps = int(round(trunk_fraction * total))
    arrays = [corpus.array(d, "train") for d in train_domains]
    model = build_model(cfg.shape, vocab_size=corpus.vocab_size, seq_len=cfg.seq_len, seed=init)
    pack = PackedLlama([model])
    module: nn.Module = pack
    module.to(dev)
    opt = make_pack_adamw(pack, cfg)
    rng = np.random.default_rng(data)
    trunk = MixtureBatcher(
        arrays, trunk_weights, seq_len=cfg.seq_len, batch_size=cfg.batch_size, rng=rng
    )
    k = len(train_domains)

    def step(i: int, batchers: Sequence[MixtureBatcher]) -> torch.Tensor:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(
                i, total=total, warmup_fraction=cfg.warmup_fraction, min_ratio=cfg.min_lr_ratio
            )
        opt.zero_grad(set_to_none=True)
        batch = torch.stack([b.next() for b in batchers]).to(dev)
        losses = pack_train_step(pack, batch, cfg=cfg, autocast=autocast)
        if cfg.grad_clip is not None:
            clip_member_grads(pack, cfg.grad_clip)
        opt.step()
        return losses

    module.train()
    for i in range(trunk_steps):
        step(i, [trunk])
    pack.keep([0] * k, opt)  # branch: k copies of the trunk and of its optimizer state
    experts = [
        MixtureBatcher(
            arrays,
            np.eye(k)[j],
            seq_len=cfg.seq_len,
            batch_size=cfg.batch_size,
            rng=np.random.default_rng([data, j]),
        )
        for j in range(k)
    ]
    losses = torch.zeros(k)
    for i in range(trunk_steps, total):
        losses = step(i, experts)
    values = losses.tolist()
    if not all(math.isfinite(v) for v in values):
        raise DataError(f"an expert diverged: final training losses {values}")
    if log is not None:
        log(f"experts trained: {dict(zip(train_domains, np.round(values, 3), strict=True))}")
    cost = (trunk_steps + k * (total - trunk_steps)) / total
    return Experts(pack=pack, domains=tuple(train_domains), cost_runs=cost)


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
