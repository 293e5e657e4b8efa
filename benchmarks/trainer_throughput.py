"""Proxy-trainer throughput against a plain PyTorch loop on the same model, batch and data.

Every proxy run goes through ``proxies.train.train_model`` (mixture batcher, warm-up + cosine
schedule, clipping, fused AdamW, divergence checks). Its extras must cost nothing: the figure is
its tokens/s over a hand-written nanoGPT-style loop (random windows, default AdamW, no schedule,
no clipping) training the same preset from the same initialisation on the same token arrays
(the smoke corpus, built from the venv's own files in seconds). The two alternate in one
process, so a drifting machine load hits both alike; the median of the repeats' ratios is
reported (robust to a repeat that another process slowed).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from benchmarks.suite import Case, Column, Params, col, fmt, one_table


class ThroughputParams(Params):
    """Proxy trainer tokens/s against a plain PyTorch loop (target: ratio >= 1.0)."""

    smoke: ClassVar[Mapping[str, Any]] = {
        "preset": "nano",
        "vocab": 300,
        "seq_len": 32,
        "batch_size": 4,
        "tokens": 2048,
        "repeats": 1,
        "corpus_mb": 0.2,
    }

    preset: str = "micro"
    """Model preset of both loops (``proxies.model``)."""
    vocab: int = 4096
    """BPE vocabulary of the smoke corpus."""
    seq_len: int = 128
    batch_size: int = 16
    tokens: int = Field(60_000, ge=1)
    """Training tokens per measured run."""
    repeats: int = Field(7, ge=1)
    """Measured runs of each loop, alternating."""
    torch_threads: int | None = Field(None, ge=1)
    """Torch threads of both loops (None: torch's default, all cores, as proxy runs use). One
    thread makes the ratio far less sensitive to other processes on the machine."""
    corpus_mb: float = Field(1.0, gt=0)
    """Text per smoke domain; the tokenizer samples twice as much."""


def smoke_corpus(work: Path, *, vocab: int, cap_bytes: int) -> Any:
    from proxies.prepare import PrepOptions, TokenizerSpec, prepare_tokens
    from proxies.sources import SMOKE_DOMAINS, build_sources

    results = build_sources(
        work / "raw",
        domains=list(SMOKE_DOMAINS),
        cap_bytes=cap_bytes,
        install=False,
        log=lambda _: None,
    )
    dirs = {r.domain: r.path for r in results if r.ok and r.path is not None}
    return prepare_tokens(
        dirs,
        work / "tokens",
        tokenizer=TokenizerSpec(vocab_size=vocab, sample_bytes=2 * cap_bytes),
        options=PrepOptions(val_fraction=0.05, cap_bytes=cap_bytes),
    )


def plain_loop(corpus: Any, cfg: Any, seed: int) -> float:
    """Tokens/s of a hand-written loop (same model and initialisation, same batch shape)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from proxies.model import build_model, resolve_shape

    data = np.concatenate([corpus.array(d, "train") for d in corpus.domains])
    model = build_model(
        resolve_shape(cfg.model), vocab_size=corpus.vocab_size, seq_len=cfg.seq_len, seed=seed
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(seed)
    window = np.arange(cfg.seq_len + 1)

    def get_batch() -> torch.Tensor:
        starts = rng.integers(0, len(data) - cfg.seq_len - 1, size=cfg.batch_size)
        return torch.from_numpy(data[starts[:, None] + window].astype(np.int64))  # (B, T+1)

    start = time.perf_counter()
    for _ in range(cfg.steps):
        batch = get_batch()
        logits = model(input_ids=batch[:, :-1], use_cache=False).logits  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return cfg.steps * cfg.batch_size * cfg.seq_len / (time.perf_counter() - start)


def trainer(corpus: Any, cfg: Any, seed: int) -> float:
    import numpy as np

    from proxies.train import train_model

    domains = list(corpus.domains)
    weights = np.full(len(domains), 1.0 / len(domains))
    res = train_model(
        corpus, train_domains=domains, weights=weights, eval_domains=domains[:1], cfg=cfg, seed=seed
    )
    return res.tokens_per_second


def run(p: ThroughputParams, work: Path) -> list[dict[str, Any]]:
    import torch

    from proxies.train import TrainConfig

    if p.torch_threads is not None:
        torch.set_num_threads(p.torch_threads)
    corpus = smoke_corpus(work, vocab=p.vocab, cap_bytes=int(p.corpus_mb * 1e6))
    cfg = TrainConfig(
        model=p.preset,
        seq_len=p.seq_len,
        batch_size=p.batch_size,
        train_tokens=p.tokens,
        eval_tokens=256,
    )
    warm = cfg.model_copy(update={"train_tokens": cfg.batch_size * cfg.seq_len * 3})
    plain_loop(corpus, warm, 0), trainer(corpus, warm, 0)  # allocator and kernels warmed up
    plain, ours = [], []
    for i in range(p.repeats):  # alternate, so drifting machine load hits both alike
        plain.append(plain_loop(corpus, cfg, i))
        ours.append(trainer(corpus, cfg, i))
        print(f"repeat {i}: plain {plain[-1]:.0f} tok/s, trainer {ours[-1]:.0f} tok/s")
    ratios = [b / a for a, b in zip(plain, ours, strict=True)]  # each pair ran back to back
    return [
        {
            "preset": p.preset,
            "vocab": corpus.vocab_size,
            "batch_size": p.batch_size,
            "seq_len": p.seq_len,
            "torch_threads": torch.get_num_threads(),
            "plain_tokens_per_s": statistics.median(plain),
            "trainer_tokens_per_s": statistics.median(ours),
            "ratio": statistics.median(ratios),
            "ratios": [round(r, 4) for r in ratios],
        }
    ]


COLUMNS: list[Column] = [
    ("preset", col("preset")),
    ("vocab", col("vocab")),
    ("batch x seq", lambda r: f"{r['batch_size']}x{r['seq_len']}"),
    ("plain tok/s", col("plain_tokens_per_s", ".0f")),
    ("trainer tok/s", col("trainer_tokens_per_s", ".0f")),
    ("ratio (median of repeats)", col("ratio", ".3f")),
    ("ratio per repeat", lambda r: " ".join(fmt(x, ".3f") for x in r["ratios"])),
]


CASES = [
    Case(name="trainer_throughput", params=ThroughputParams, run=run, tables=one_table(COLUMNS))
]
