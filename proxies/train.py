"""Train one proxy (or target) model on a mixture and evaluate per-domain validation loss."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from transformers import PreTrainedModel

from mixtures.errors import ConfigError
from proxies.batches import MixtureBatcher, eval_batches
from proxies.config import EvaluatorRef, TrainConfig
from proxies.evaluators import run_evaluator
from proxies.model import count_parameters, initial_model
from proxies.tokens import TokenCorpus


@dataclass
class TrainResult:
    """Outcome of one run: ``status`` is ok, diverged or failed; losses per evaluated domain."""

    status: Literal["ok", "diverged", "failed"]
    val_loss: dict[str, float] = field(default_factory=dict)
    #: the custom evaluator's value (``target.kind: custom``), keyed by its reference
    evals: dict[str, float] = field(default_factory=dict)
    final_train_loss: float | None = None
    steps: int = 0
    tokens: int = 0
    wall_seconds: float = 0.0
    tokens_per_second: float = 0.0
    non_embedding_params: int = 0
    device: str = "cpu"
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict, the ``result`` of a run record."""
        return asdict(self)


def set_torch_threads(n: int) -> None:
    """Size torch's intra-op thread pool (process-wide), e.g. 1 on a machine shared with others."""
    if n < 1:
        raise ConfigError(f"torch threads must be >= 1, got {n}")
    torch.set_num_threads(n)


def resolve_device(choice: str) -> torch.device:
    """The device of ``train.device``: ``auto`` is cuda when present, else cpu."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def uses_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether training and evaluation run under bf16 autocast: ``precision`` bf16, or auto on
    a CUDA device (fp32 everywhere else: a CPU without bf16 units emulates it, slower)."""
    if cfg.precision == "auto":
        return device.type == "cuda"
    return cfg.precision == "bf16"


def run_seeds(seed: int) -> tuple[int, int]:
    """The (initialisation, data) seeds a run derives from its ``seed``: solo and packed runs
    derive them alike, so a member of a pack starts from its solo run's weights and reads its
    batches."""
    init_seed, data_seed = np.random.SeedSequence(seed).generate_state(2)
    return int(init_seed), int(data_seed)


def lr_factor(step: int, *, total: int, warmup_fraction: float, min_ratio: float) -> float:
    """Linear warm-up, then cosine decay to ``min_ratio`` of the peak at the last step."""
    warmup = int(total * warmup_fraction)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_adamw(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW at ``cfg.lr`` with ``cfg.weight_decay`` on matrices only (not norms or biases)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused kernel is one pass over all parameters: faster than the default on CPU and GPU.
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=True)


#: Logit elements (B * T * V) up to which the loss materialises all logits at once, in fp32:
#: 2**27 fp32 elements are 512 MB (about three times that with the softmax and the gradient),
#: affordable wherever these models train. A default batch of 16 x 128 tokens stays under it up
#: to a 64k vocabulary, so such runs compute the one-shot loss of before, bit for bit.
PLAIN_LOSS_MAX_ELEMENTS = 2**27
#: Logit elements per chunk of the chunked loss: 2**25 fp32 elements are 128 MB, e.g. 256 tokens
#: at a 128k vocabulary (32 chunks for an 8k-token batch): chunks large enough to keep a GPU's
#: matmuls busy, few enough that the Python loop over them costs little.
LOSS_CHUNK_ELEMENTS = 2**25


def next_token_loss(
    model: PreTrainedModel,
    batch: torch.Tensor,
    *,
    autocast: bool,
    plain_max_elements: int = PLAIN_LOSS_MAX_ELEMENTS,
    chunk_elements: int = LOSS_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Mean next-token cross-entropy of ``batch`` (B, T+1), over its B * T predicted tokens.

    Up to ``plain_max_elements`` logits, the model's full (B, T, V) logits are computed and
    cast to fp32 at once. Above it, only the final hidden states are kept whole: the output
    layer and the fp32 loss run on chunks of ``chunk_elements // V`` tokens, each recomputed
    in the backward pass (activation checkpointing), so that one chunk's logits are alive at a
    time instead of all of them (6.6 GB at a 50k vocabulary and a 32k-token batch).
    ``autocast``: bf16 autocast on the batch's device.
    """
    x, y = batch[:, :-1], batch[:, 1:]  # (B, T), (B, T)
    vocab = model.get_output_embeddings().weight.size(0)
    if y.numel() * vocab <= plain_max_elements:
        with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=x, use_cache=False).logits  # (B, T, V)
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
    with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=autocast):
        hidden = model.get_decoder()(input_ids=x, use_cache=False).last_hidden_state  # (B, T, C)
    head = model.get_output_embeddings()
    chunk = max(1, chunk_elements // vocab)
    total = torch.zeros((), dtype=torch.float32, device=batch.device)
    for h, t in zip(
        hidden.reshape(-1, hidden.size(-1)).split(chunk), y.reshape(-1).split(chunk), strict=True
    ):  # (n, C), (n,)
        if torch.is_grad_enabled():
            # Only h and t are kept for the backward pass, which recomputes the chunk's logits;
            # no random op runs in it, so the RNG state need not be saved and restored.
            part = checkpoint(
                _chunk_loss, head, h, t, autocast, use_reentrant=False, preserve_rng_state=False
            )
        else:
            part = _chunk_loss(head, h, t, autocast)
        total = total + part
    return total / y.numel()


def _chunk_loss(
    head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, autocast: bool
) -> torch.Tensor:
    """Summed cross-entropy of one chunk: (n, C) hidden states, (n,) targets."""
    with torch.autocast(hidden.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = head(hidden)  # (n, V)
    return F.cross_entropy(logits.float(), targets, reduction="sum")


def train_step(model: PreTrainedModel, batch: torch.Tensor, *, cfg: TrainConfig) -> torch.Tensor:
    """Forward and backward passes of one optimizer step's ``batch`` (B, T+1), gradients added
    to the parameters' ``.grad``; returns the batch's mean loss, detached.

    With ``cfg.micro_batch_size``, the batch goes through in ``cfg.micro_batches`` slices, each
    loss divided by their number: the micro-batches are equal in size, so the accumulated
    gradient is that of the whole batch's mean loss, as without accumulation.
    """
    autocast = uses_bf16(cfg, batch.device)
    if cfg.micro_batch_size is None:
        loss = next_token_loss(model, batch, autocast=autocast)
        loss.backward()
        return loss.detach()
    total = torch.zeros((), device=batch.device)
    for micro in batch.split(cfg.micro_batch_size):  # (b, T+1) each
        loss = next_token_loss(model, micro, autocast=autocast) / cfg.micro_batches
        loss.backward()
        total += loss.detach()
    return total


@torch.inference_mode()
def evaluate(
    model: PreTrainedModel,
    corpus: TokenCorpus,
    domains: Sequence[str],
    *,
    cfg: TrainConfig,
    device: torch.device,
) -> dict[str, float]:
    """Mean next-token loss per domain on ``eval_tokens`` of its validation split, in fixed
    windows laid out by ``cfg.eval_layout`` (the same windows for every run), in batches of
    ``eval_batches``; the loss bounds the logits in memory as in training."""
    model.eval()
    out: dict[str, float] = {}
    for domain in domains:
        total, count = 0.0, 0
        for batch in eval_batches(corpus.array(domain, "val"), cfg):
            batch = batch.to(device)
            loss = next_token_loss(model, batch, autocast=uses_bf16(cfg, device))
            total += float(loss) * batch.size(0)
            count += batch.size(0)
        out[domain] = total / count
    model.train()
    return out


def final_loss_divergence(
    val_loss: Mapping[str, float],
    weights: Mapping[str, float],
    *,
    vocab_size: int,
    ratio: float,
) -> str | None:
    """Why a run that finished training learned nothing usable, or None when it did.

    Its validation loss on the data it trained on (the mean over its evaluated training
    domains, weighted by the mixture) is compared with ``ratio`` x ln(vocab), the loss of a
    uniform guess. Domains it did not train on (a held-out target) may be legitimately worse
    than a guess and do not count; with no trained domain evaluated, the plain mean of the
    evaluated ones is used.
    """
    limit = ratio * math.log(vocab_size)
    trained = {d: w for d, w in weights.items() if w > 0 and d in val_loss}
    if trained:
        total = math.fsum(trained.values())
        loss = math.fsum(w * val_loss[d] for d, w in trained.items()) / total
        where = "its training domains"
    elif val_loss:
        loss = math.fsum(val_loss.values()) / len(val_loss)
        where = "its evaluated domains"
    else:
        return None
    if loss <= limit:
        return None
    return (
        f"final validation loss {loss:.4g} on {where} is above {ratio:g} x ln(vocab {vocab_size})"
        f" = {limit:.4g}, the loss of a uniform guess"
    )


def conclude(
    result: TrainResult,
    val_loss: dict[str, float],
    *,
    weights: Mapping[str, float],
    corpus: TokenCorpus,
    cfg: TrainConfig,
    eval_domains: Sequence[str],
    evaluator: EvaluatorRef | None,
    model: Callable[[], torch.nn.Module],
    device: torch.device,
) -> None:
    """Finish the ``result`` of a run that trained to the end: its validation losses, the
    divergence checks on them (non-finite, or no better than a uniform guess:
    ``final_loss_divergence``), then the custom evaluator on ``model()`` (a failure in the
    user's code is recorded as ``failed`` with the losses kept)."""
    result.val_loss = val_loss
    bad = {d: v for d, v in val_loss.items() if not math.isfinite(v)}
    worse = final_loss_divergence(
        val_loss, weights, vocab_size=corpus.vocab_size, ratio=cfg.final_loss_ratio
    )
    if bad or worse:
        result.status = "diverged"
        result.error = f"non-finite validation loss {bad}" if bad else worse
    if result.status != "ok" or evaluator is None:
        return
    try:
        trained = model()
        trained.eval()
        value = run_evaluator(
            evaluator.function,
            evaluator.params,
            trained,
            corpus,
            domains=tuple(evaluator.domains or eval_domains),
            cfg=cfg,
            device=device,
        )
        result.evals[evaluator.function] = value
    except Exception as err:  # the user's code: any error, recorded with the losses kept
        result.status = "failed"
        result.error = f"evaluator {evaluator.function!r}: {type(err).__name__}: {err}"


def train_model(
    corpus: TokenCorpus,
    *,
    train_domains: Sequence[str],
    weights: np.ndarray,
    eval_domains: Sequence[str],
    cfg: TrainConfig,
    seed: int,
    evaluator: EvaluatorRef | None = None,
    log: Callable[[str], None] | None = None,
    log_every: int = 50,
    device: str | None = None,
    save_to: str | Path | None = None,
) -> TrainResult:
    """Train a fresh model on ``weights`` over ``train_domains``; evaluate on ``eval_domains``
    and, with ``evaluator``, call it on the trained model (``proxies.evaluators``).

    A non-finite or exploding training loss (above ``cfg.divergence_ratio`` x ln(vocab)) ends
    the run as ``diverged``, and so does a final validation loss no better than a uniform guess
    (``final_loss_divergence``); its result is still written, so the sweep goes on. An
    evaluator that fails or returns no finite number ends it as ``failed``, with the validation
    losses kept and the error naming the evaluator. Other exceptions propagate: the caller
    records them as failed. ``device``: train there instead of on ``cfg.device`` (a task's
    placement; the run id does not change). ``save_to``: a folder the trained model of an ok
    run is saved to (``save_model``), e.g. a base for ``train.init_from``.
    """
    torch_device = resolve_device(device if device is not None else cfg.device)
    init_seed, data_seed = run_seeds(seed)
    llama = initial_model(cfg, vocab_size=corpus.vocab_size, seed=init_seed)
    # Moved in place through nn.Module's typed ``to``: transformers wraps its override with
    # functools.wraps, which leaves type checkers no usable signature.
    model: torch.nn.Module = llama
    model.to(torch_device)
    batcher = MixtureBatcher(
        [corpus.array(d, "train") for d in train_domains],
        np.asarray(weights, dtype=float),
        seq_len=cfg.seq_len,
        batch_size=cfg.batch_size,
        rng=np.random.default_rng(data_seed),
    )
    # The compiled module shares the parameters; the optimizer and evaluation use the plain one.
    stepper = cast(PreTrainedModel, torch.compile(llama, dynamic=False)) if cfg.compile else llama
    opt = make_adamw(model, cfg)
    total = cfg.steps
    limit = cfg.divergence_ratio * math.log(corpus.vocab_size)
    result = TrainResult(
        status="ok", non_embedding_params=count_parameters(llama), device=torch_device.type
    )
    start = time.perf_counter()
    model.train()
    for step in range(total):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(
                step, total=total, warmup_fraction=cfg.warmup_fraction, min_ratio=cfg.min_lr_ratio
            )
        opt.zero_grad(set_to_none=True)
        loss = train_step(stepper, batcher.next().to(torch_device, non_blocking=True), cfg=cfg)
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        # Reading the loss forces a sync, so it is checked only every log_every steps.
        if (step + 1) % log_every == 0 or step + 1 == total:
            value = float(loss)
            result.final_train_loss = value
            if not math.isfinite(value) or value > limit:
                result.status = "diverged"
                result.error = f"training loss {value:.4g} at step {step + 1} (limit {limit:.3g})"
                break
            if log is not None:
                log(f"step {step + 1}/{total} loss {value:.4f}")
    train_seconds = time.perf_counter() - start
    result.steps = step + 1
    result.tokens = result.steps * cfg.batch_size * cfg.seq_len
    result.tokens_per_second = result.tokens / max(train_seconds, 1e-9)
    if result.status == "ok":
        conclude(
            result,
            evaluate(llama, corpus, eval_domains, cfg=cfg, device=torch_device),
            weights=dict(zip(train_domains, np.asarray(weights, float).tolist(), strict=True)),
            corpus=corpus,
            cfg=cfg,
            eval_domains=eval_domains,
            evaluator=evaluator,
            model=lambda: llama,
            device=torch_device,
        )
    if save_to is not None and result.status == "ok":
        save_model(llama, corpus, save_to)
    result.wall_seconds = time.perf_counter() - start
    return result


def save_model(model: PreTrainedModel, corpus: TokenCorpus, folder: str | Path) -> Path:
    """``model`` as a ``save_pretrained`` folder that ``train.init_from`` accepts, with the
    corpus's ``tokenizer.json`` beside it (when the corpus has one), so that a run from it is
    checked against the tokenizer it was trained with."""
    path = Path(folder)
    model.save_pretrained(path)
    tokenizer = Path(corpus.path) / "tokenizer.json"
    if tokenizer.is_file():
        shutil.copyfile(tokenizer, path / "tokenizer.json")
    return path
