"""Packed training: K proxies of one shape trained at once in one process, as one stacked model.

A pack is K Llama decoders whose parameters are stacked along a leading member axis: every
linear layer of the K models is one batched matmul, every norm one broadcast op. Each member
keeps what makes it its own run:

- its initialisation: member k's weights are those ``proxies.model.build_model`` draws from its
  own seed, stacked;
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

import copy
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import LlamaForCausalLM

from mixtures.errors import ConfigError
from proxies.batches import MixtureBatcher, eval_batches
from proxies.config import EvaluatorRef, ModelShape, TrainConfig
from proxies.model import build_model, count_parameters
from proxies.tokens import TokenCorpus
from proxies.train import (
    LOSS_CHUNK_ELEMENTS,
    PLAIN_LOSS_MAX_ELEMENTS,
    TrainResult,
    conclude,
    lr_factor,
    resolve_device,
    run_seeds,
    uses_bf16,
)


def _key(name: str) -> str:
    """A parameter name of ``LlamaForCausalLM`` as a ``ParameterDict`` key (no dots)."""
    return name.replace(".", "__")


class PackedLlama(nn.Module):
    """K Llama decoders of ``shape`` with stacked parameters: ``params[name]`` is (K, *shape of
    the solo model's parameter ``name``).

    Built from K solo models (``build_model`` with each member's initialisation seed), so member
    k starts from exactly the weights of its solo run.
    """

    def __init__(self, models: Sequence[LlamaForCausalLM]) -> None:
        super().__init__()
        if not models:
            raise ConfigError("a pack needs at least one model")
        first = models[0]
        self.config = first.config
        self.names = [name for name, _ in first.named_parameters()]
        self.params = nn.ParameterDict(
            {
                _key(name): nn.Parameter(
                    torch.stack([m.get_parameter(name).detach() for m in models]).clone()
                )
                for name in self.names
            }
        )
        # The rotary embedding has no parameters: the first model's module is shared.
        self.rotary = first.model.rotary_emb
        cfg = self.config
        self.n_layers = int(cfg.num_hidden_layers)
        self.n_heads = int(cfg.num_attention_heads)
        self.kv_heads = int(cfg.num_key_value_heads or cfg.num_attention_heads)
        self.head_dim = int(cfg.hidden_size) // self.n_heads
        self.eps = cfg.rms_norm_eps
        self.tied = bool(cfg.tie_word_embeddings)
        if cfg.hidden_act != "silu" or cfg.attention_bias or cfg.mlp_bias:
            raise ConfigError("a pack supports the Llama decoder of proxies.model only")

    @property
    def size(self) -> int:
        """Members in the pack (K)."""
        return int(self.params[_key(self.names[0])].size(0))

    def p(self, name: str) -> torch.Tensor:
        return self.params[_key(name)]

    def _norm(self, h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """RMSNorm of (K, N, C) with (K, C) weights, computed in fp32 as transformers does."""
        dtype = h.dtype
        h32 = h.to(torch.float32)
        h32 = h32 * torch.rsqrt(h32.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight[:, None, :] * h32.to(dtype)

    @staticmethod
    def _linear(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """(K, N, in) x (K, out, in) -> (K, N, out): K linear layers as one batched matmul."""
        return torch.bmm(h, weight.transpose(1, 2))

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """Final hidden states (K, B, T, C) of token ids (K, B, T), member k reading ids[k]."""
        K, B, T = ids.shape
        emb = self.p("model.embed_tokens.weight")  # (K, V, C)
        # One lookup in the (K * V, C) table of every member's rows: member k's ids are offset
        # by k * V (an embedding's backward is a cheap scatter, advanced indexing's is not).
        offsets = torch.arange(K, device=ids.device)[:, None, None] * emb.size(1)
        h = F.embedding(ids + offsets, emb.reshape(-1, emb.size(-1))).view(K, B * T, -1)
        positions = torch.arange(T, device=ids.device)[None, :]
        cos, sin = self.rotary(h, positions)  # (1, T, hd) each
        cos, sin = cos[:, None], sin[:, None]  # (1, 1, T, hd): broadcast over (K*B, H, T, hd)
        for i in range(self.n_layers):
            pre = f"model.layers.{i}."
            x = self._norm(h, self.p(pre + "input_layernorm.weight"))
            # q, k and v of every member in one batched matmul (their weights side by side)
            qkv = self._linear(
                x,
                torch.cat(
                    [self.p(pre + f"self_attn.{n}_proj.weight") for n in ("q", "k", "v")], dim=1
                ),
            ).view(K * B, T, self.n_heads + 2 * self.kv_heads, self.head_dim)
            qkv = qkv.transpose(1, 2)  # (KB, H + 2 KV, T, hd)
            q = qkv[:, : self.n_heads]
            k = qkv[:, self.n_heads : self.n_heads + self.kv_heads]
            v = qkv[:, self.n_heads + self.kv_heads :]
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            if self.kv_heads != self.n_heads:
                groups = self.n_heads // self.kv_heads
                k = k.repeat_interleave(groups, dim=1)
                v = v.repeat_interleave(groups, dim=1)
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (KB, H, T, hd)
            att = att.transpose(1, 2).reshape(K, B * T, self.n_heads * self.head_dim)
            h = h + self._linear(att, self.p(pre + "self_attn.o_proj.weight"))
            x = self._norm(h, self.p(pre + "post_attention_layernorm.weight"))
            gate, up = self._linear(
                x,
                torch.cat(
                    [self.p(pre + "mlp.gate_proj.weight"), self.p(pre + "mlp.up_proj.weight")],
                    dim=1,
                ),
            ).chunk(2, dim=-1)
            h = h + self._linear(F.silu(gate) * up, self.p(pre + "mlp.down_proj.weight"))
        h = self._norm(h, self.p("model.norm.weight"))
        return h.view(K, B, T, -1)

    def head(self) -> torch.Tensor:
        """The output layers' weights (K, V, C): the token embeddings when tied."""
        return self.p("model.embed_tokens.weight" if self.tied else "lm_head.weight")

    def member(self, k: int, *, seq_len: int) -> LlamaForCausalLM:
        """Member ``k`` as a plain ``LlamaForCausalLM`` (a copy, on this pack's device)."""
        cfg = self.config
        shape = ModelShape(
            d_model=cfg.hidden_size,
            n_layers=cfg.num_hidden_layers,
            n_heads=cfg.num_attention_heads,
            d_ff=cfg.intermediate_size,
            n_kv_heads=cfg.num_key_value_heads,
            tie_embeddings=self.tied,
        )
        model = build_model(shape, vocab_size=cfg.vocab_size, seq_len=seq_len, seed=0)
        with torch.no_grad():
            for name in self.names:
                model.get_parameter(name).copy_(self.p(name)[k])
        module: nn.Module = model
        module.to(self.p(self.names[0]).device)
        return model

    def with_params(self, params: Mapping[str, torch.Tensor]) -> PackedLlama:
        """A pack of this one's shape whose stacked parameters are ``params`` (by parameter
        name, any number of members), frozen: e.g. merged models (``proxies.merge``)."""
        new = copy.copy(self)
        new._modules = dict(self._modules)
        new.params = nn.ParameterDict(
            {_key(n): nn.Parameter(params[n], requires_grad=False) for n in self.names}
        )
        return new

    def keep(self, members: Sequence[int], opt: torch.optim.Optimizer) -> None:
        """Keep only ``members`` (indices into the pack), in that order, in the parameters and
        in ``opt``'s state: the dropped members' slices are freed, the others are untouched."""
        index = torch.tensor(list(members), dtype=torch.long)
        for group in opt.param_groups:
            new_params = []
            for old in group["params"]:
                key = next(k for k, v in self.params.items() if v is old)
                new = nn.Parameter(old.detach()[index.to(old.device)].clone())
                state = opt.state.pop(old, None)
                if state is not None:
                    opt.state[new] = {
                        s: (v[index.to(v.device)].clone() if v.ndim > 0 else v)
                        for s, v in state.items()
                    }
                self.params[key] = new
                new_params.append(new)
            group["params"] = new_params


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.size(-1) // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def pack_loss(
    pack: PackedLlama,
    batch: torch.Tensor,
    *,
    autocast: bool,
    plain_max_elements: int = PLAIN_LOSS_MAX_ELEMENTS,
    chunk_elements: int = LOSS_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Each member's mean next-token cross-entropy (K,) of ``batch`` (K, B, T+1).

    As ``proxies.train.next_token_loss``: the logits are materialised at once up to
    ``plain_max_elements`` (all members together), else the output layer and the fp32 loss run
    on chunks of tokens, recomputed in the backward pass.
    """
    x, y = batch[..., :-1], batch[..., 1:]  # (K, B, T) each
    K = x.size(0)
    with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=autocast):
        hidden = pack.hidden(x)  # (K, B, T, C)
    head = pack.head()  # (K, V, C)
    vocab = head.size(1)
    hidden = hidden.reshape(K, -1, hidden.size(-1))  # (K, N, C)
    targets = y.reshape(K, -1)  # (K, N)
    n = targets.size(1)
    if targets.numel() * vocab <= plain_max_elements:
        return _chunk_losses(head, hidden, targets, autocast) / n
    chunk = max(1, chunk_elements // (vocab * K))
    total = torch.zeros(K, dtype=torch.float32, device=batch.device)
    for start in range(0, n, chunk):
        h, t = hidden[:, start : start + chunk], targets[:, start : start + chunk]
        if torch.is_grad_enabled():
            part = checkpoint(
                _chunk_losses, head, h, t, autocast, use_reentrant=False, preserve_rng_state=False
            )
        else:
            part = _chunk_losses(head, h, t, autocast)
        total = total + part
    return total / n


def _chunk_losses(
    head: torch.Tensor,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    autocast: bool,
) -> torch.Tensor:
    """Summed cross-entropy per member (K,) of (K, n, C) hidden states and (K, n) targets."""
    with torch.autocast(hidden.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = torch.bmm(hidden, head.transpose(1, 2))  # (K, n, V)
    K, n, V = logits.shape
    losses = F.cross_entropy(logits.float().reshape(-1, V), targets.reshape(-1), reduction="none")
    return losses.view(K, n).sum(1)


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
    solo = [
        build_model(cfg.shape, vocab_size=corpus.vocab_size, seq_len=cfg.seq_len, seed=init)
        for init, _ in seeds
    ]
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
