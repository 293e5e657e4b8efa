"""Peak host memory of one proxy training step at a large vocabulary, with and without the chunked
loss and micro-batches.

At a 128k vocabulary a 16 x 512 batch has 1.07e9 logits: 4.3 GB in fp32 once, several times that
with the softmax and the gradient. ``proxies.train.train_step`` takes the loss from the hidden
states in checkpointed chunks above a threshold, and ``micro_batch_size`` splits the batch. Each
variant runs in a fresh subprocess, whose peak resident set (``ru_maxrss``) covers torch's
allocator; ``plain`` is the loss as one fp32 tensor of every logit, the way it was computed
before the chunked loss.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from benchmarks.suite import Case, Column, Params, col, one_table

VARIANTS = ("plain", "chunked", "chunked_micro4")


class MemoryParams(Params):
    """Peak RSS of one training step at a 128k vocabulary (plain loss, chunked, micro-batches)."""

    smoke: ClassVar[Mapping[str, Any]] = {
        "vocab": 4096,
        "batch_size": 4,
        "seq_len": 64,
        "d_model": 32,
        "n_layers": 1,
        "n_heads": 2,
        "d_ff": 64,
    }

    vocab: int = Field(131_072, gt=256)
    batch_size: int = Field(16, ge=4)
    seq_len: int = Field(512, ge=8)
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 1024
    variants: list[str] = list(VARIANTS)


def measure(p: MemoryParams, variant: str) -> dict[str, Any]:
    """One step of ``variant`` in this process: its loss, peak RSS and time."""
    import torch
    import torch.nn.functional as F

    from proxies.config import TrainConfig
    from proxies.model import build_model
    from proxies.train import make_adamw, train_step

    shape = {"d_model": p.d_model, "n_layers": p.n_layers, "n_heads": p.n_heads, "d_ff": p.d_ff}
    micro = p.batch_size // 4 if variant == "chunked_micro4" else None
    cfg = TrainConfig(
        model=shape, seq_len=p.seq_len, batch_size=p.batch_size, micro_batch_size=micro
    )
    model = build_model(cfg.shape, vocab_size=p.vocab, seq_len=p.seq_len, seed=0)
    opt = make_adamw(model, cfg)
    gen = torch.Generator().manual_seed(0)
    batch = torch.randint(0, p.vocab, (p.batch_size, p.seq_len + 1), generator=gen)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    if variant == "plain":  # every logit at once, in fp32
        x, y = batch[:, :-1], batch[:, 1:]  # (B, T), (B, T)
        logits = model(input_ids=x, use_cache=False).logits  # (B, T, V)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
    else:
        loss = train_step(model, batch, cfg=cfg)
    opt.step()
    return {
        "variant": variant,
        "micro_batch_size": micro,
        "loss": float(loss),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_step_mb": before,
        "step_seconds": time.perf_counter() - start,
    }


def run(p: MemoryParams, work: Path) -> list[dict[str, Any]]:
    rows = []
    for variant in p.variants:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.train_memory", p.model_dump_json(), variant],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1])
    return [
        {**r, "vocab": p.vocab, "batch": f"{p.batch_size}x{p.seq_len}", "d_model": p.d_model}
        for r in rows
    ]


COLUMNS: list[Column] = [
    ("variant", col("variant")),
    ("vocab", col("vocab")),
    ("batch x seq", col("batch")),
    ("micro-batch", col("micro_batch_size")),
    ("loss", col("loss", ".4f")),
    ("peak RSS MB", col("peak_rss_mb", ".0f")),
    ("step s", col("step_seconds", ".1f")),
]

CASES = [Case(name="train_memory", params=MemoryParams, run=run, tables=one_table(COLUMNS))]


if __name__ == "__main__":  # one variant in this fresh process: python -m benchmarks.train_memory
    params = MemoryParams.model_validate_json(sys.argv[1])
    print(json.dumps(measure(params, sys.argv[2])))
