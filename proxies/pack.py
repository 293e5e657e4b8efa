"""Packed training: K proxies of one shape trained at once in one process, as one stacked model.

A pack is K Llama decoders whose parameters are stacked along a leading member axis: every
linear layer of the K models is one batched matmul, every norm one broadcast op. Each member
keeps what makes it its own run:

- its initialisation: member k's weights are those ``proxies.model.initial_model`` gives its
  solo run (drawn from its own seed, or the ``init_from`` model), stacked;
- its mixture and data stream: one ``MixtureBatcher`` per member, seeded as a solo run seeds it;
- its optimizer state: AdamW is element-wise, so one AdamW over the stacked tensors updates
  each member exactly as its own AdamW would; the learning-rate schedule is the pack's, shared
  because members share their ``TrainConfig``;
- its gradient clipping: each member's gradient norm is its own (not the pack's);
- its divergence check: a diverged member is reported as soon as it is found and dropped from
  the pack (its slices of the parameters and optimizer state are removed), the others go on.

The loss of the pack is the sum of the members' mean losses; members share no parameter, so the
gradient each member receives is that of its own loss, as in a solo run. The maths is that of
``transformers``' Llama (RMSNorm in fp32, rotary embeddings, grouped-query attention, SwiGLU);
only the kernels differ (batched matmuls), so a member's losses equal its solo run's within
float tolerance, not bit for bit. ``PackedLlama.member`` exports a member as a plain
``LlamaForCausalLM`` (custom evaluators, checkpoints).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from proxies.batches import MixtureBatcher, eval_batches
from proxies.config import EvaluatorRef, TrainConfig
from proxies.model import count_parameters, initial_model
from proxies.packed_model import PackedLlama, pack_loss
from proxies.tokens import TokenCorpus
from proxies.train import (
    TrainResult,
    conclude,
    lr_factor,
    resolve_device,
    run_seeds,
    uses_bf16,
)


def pack_train_step(
    pack: PackedLlama,
    batch: torch.Tensor,
    *,
    cfg: TrainConfig,
    autocast: bool,
    loss_fn: Callable[..., torch.Tensor] = pack_loss,
) -> torch.Tensor:
    """Forward and backward of one optimizer step's ``batch`` (K, B, T+1), accumulating
    gradients; returns each member's mean loss (K,), detached. Micro-batches as in
    ``proxies.train.train_step``, sliced along the batch axis."""
    if cfg.micro_batch_size is None:
        losses = loss_fn(pack, batch, autocast=autocast)
        losses.sum().backward()
        return losses.detach()
    total = torch.zeros(batch.size(0), device=batch.device)
    for micro in batch.split(cfg.micro_batch_size, dim=1):  # (K, b, T+1) each
        losses = loss_fn(pack, micro, autocast=autocast) / cfg.micro_batches
        losses.sum().backward()
        total += losses.detach()
    return total


def clip_member_grads(pack: PackedLlama, max_norm: float) -> torch.Tensor:
    """Scale each member's gradients so that its own norm is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_`` does for a solo model; returns the norms (K,)."""
    grads = [p.grad for p in pack.params.values() if p.grad is not None]
    per_param = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])
    norms = torch.linalg.vector_norm(per_param, dim=0)  # (K,): the norm of the norms
    coef = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.ndim - 1))).to(g.dtype))
    return norms


def make_pack_adamw(pack: PackedLlama, cfg: TrainConfig) -> torch.optim.AdamW:
    """``proxies.train.make_adamw`` over the stacked parameters: decay on the members' matrices
    only (stacked: three or more axes), fused."""
    params = list(pack.params.values())
    groups = [
        {"params": [p for p in params if p.ndim >= 3], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 3], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=True)


@torch.inference_mode()
def evaluate_pack(
    pack: PackedLlama,
    corpus: TokenCorpus,
    domains: Sequence[str],
    *,
    cfg: TrainConfig,
    device: torch.device,
    autocast: bool,
) -> list[dict[str, float]]:
    """Per member, the mean next-token loss per domain on the run's fixed validation windows
    (``proxies.train.evaluate``): every member reads the same windows."""
    K = pack.size
    out: list[dict[str, float]] = [{} for _ in range(K)]
    for domain in domains:
        totals, count = [0.0] * K, 0
        for batch in eval_batches(corpus.array(domain, "val"), cfg):
            batch = batch.to(device)
            losses = pack_loss(pack, batch.expand(K, *batch.shape), autocast=autocast)
            for k, value in enumerate(losses.tolist()):
                totals[k] += value * batch.size(0)
            count += batch.size(0)
        for k in range(K):
            out[k][domain] = totals[k] / count
    return out


@dataclass(frozen=True)
class Member:
    """One run of a pack: its seed and its mixture over the pack's training domains."""

    seed: int
    weights: np.ndarray


def train_pack(
    corpus: TokenCorpus,
    *,
    train_domains: Sequence[str],
    members: Sequence[Member],
    eval_domains: Sequence[str],
    cfg: TrainConfig,
    evaluator: EvaluatorRef | None = None,
    device: str | None = None,
    on_result: Callable[[int, TrainResult], None] | None = None,
    log: Callable[[str], None] | None = None,
    log_every: int = 50,
) -> list[TrainResult]:
    """Train ``members`` as one pack; return their results in order.

    Each member is trained as ``proxies.train.train_model`` trains it solo (same seeds, data,
    schedule, clipping, divergence and final-loss checks, evaluator), its result handed to
    ``on_result(index, result)`` as soon as it is known: a member that diverges during training
    at once, the others after evaluation. Throughput figures are the pack's: each member's
    tokens/s is the pack's aggregate divided by the members trained.
    """
    if not members:
        return []
    dev = torch.device(device) if device is not None else resolve_device(cfg.device)
    autocast = uses_bf16(cfg, dev)
    seeds = [run_seeds(m.seed) for m in members]
    solo = [initial_model(cfg, vocab_size=corpus.vocab_size, seed=init) for init, _ in seeds]
    n_params = count_parameters(solo[0])
    pack = PackedLlama(solo)
    del solo
    module: nn.Module = pack
    module.to(dev)
    arrays = [corpus.array(d, "train") for d in train_domains]
    batchers = [
        MixtureBatcher(
            arrays,
            np.asarray(m.weights, dtype=float),
            seq_len=cfg.seq_len,
            batch_size=cfg.batch_size,
            rng=np.random.default_rng(data),
        )
        for m, (_, data) in zip(members, seeds, strict=True)
    ]
    step_fn: Callable[..., torch.Tensor] = pack_loss
    if cfg.compile:
        step_fn = torch.compile(pack_loss, dynamic=False)
    opt = make_pack_adamw(pack, cfg)
    limit = cfg.divergence_ratio * math.log(corpus.vocab_size)
    results = [
        TrainResult(status="ok", non_embedding_params=n_params, device=dev.type) for _ in members
    ]
    active = list(range(len(members)))  # pack position -> member index
    total = cfg.steps
    start = time.perf_counter()
    module.train()
    step = 0
    for step in range(total):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(
                step, total=total, warmup_fraction=cfg.warmup_fraction, min_ratio=cfg.min_lr_ratio
            )
        opt.zero_grad(set_to_none=True)
        batch = torch.stack([batchers[i].next() for i in active]).to(dev, non_blocking=True)
        losses = pack_train_step(pack, batch, cfg=cfg, autocast=autocast, loss_fn=step_fn)
        if cfg.grad_clip is not None:
            clip_member_grads(pack, cfg.grad_clip)
        opt.step()
        if (step + 1) % log_every == 0 or step + 1 == total:
            values = losses.tolist()
            keep = []
            for pos, value in enumerate(values):
                i = active[pos]
                results[i].final_train_loss = value
                results[i].steps = step + 1
                if not math.isfinite(value) or value > limit:
                    results[i].status = "diverged"
                    results[
                        i
                    ].error = f"training loss {value:.4g} at step {step + 1} (limit {limit:.3g})"
                    _finish(results[i], cfg, start, on_result, i)
                else:
                    keep.append(pos)
            if len(keep) < len(active):
                if not keep:
                    break
                pack.keep(keep, opt)
                active = [active[pos] for pos in keep]
            if log is not None:
                shown = " ".join(f"{values[pos]:.3f}" for pos in keep)
                log(f"step {step + 1}/{total} losses [{shown}] ({len(active)} members)")
    if not any(results[i].status == "ok" for i in active):
        return results
    train_seconds = time.perf_counter() - start
    for i in active:
        results[i].steps = step + 1
    trained = sum(r.steps for r in results) * cfg.batch_size * cfg.seq_len
    rate = trained / max(train_seconds, 1e-9) / len(members)
    val = evaluate_pack(pack, corpus, eval_domains, cfg=cfg, device=dev, autocast=autocast)
    for pos, i in enumerate(active):
        res = results[i]
        res.tokens = res.steps * cfg.batch_size * cfg.seq_len
        res.tokens_per_second = rate
        conclude(
            res,
            val[pos],
            weights=dict(
                zip(train_domains, np.asarray(members[i].weights, float).tolist(), strict=True)
            ),
            corpus=corpus,
            cfg=cfg,
            eval_domains=eval_domains,
            evaluator=evaluator,
            model=functools.partial(pack.member, pos, seq_len=cfg.seq_len),
            device=dev,
        )
        _finish(res, cfg, start, on_result, i)
    return results


def _finish(
    res: TrainResult,
    cfg: TrainConfig,
    start: float,
    on_result: Callable[[int, TrainResult], None] | None,
    index: int,
) -> None:
    res.tokens = res.steps * cfg.batch_size * cfg.seq_len
    res.wall_seconds = time.perf_counter() - start
    if not res.tokens_per_second:
        res.tokens_per_second = res.tokens / max(res.wall_seconds, 1e-9)
    if on_result is not None:
        on_result(index, res)
