"""Proxy-trainer throughput vs a plain PyTorch loop on the same model, batch and data.

Both loops train the same preset from the same initialisation on the same token arrays (the
smoke corpus, built from the venv's own files in seconds). The plain loop is what one writes by
hand: a nanoGPT-style random-window ``get_batch`` from one domain array, default AdamW, no
schedule, no clipping. The trainer is ``proxies.train.train_model`` as every proxy run calls it
(mixture batcher, warm-up + cosine schedule, clipping, fused AdamW, divergence checks). The
figure is the ratio of tokens/s measured in the same process, alternating the two, median of
``--repeats``.

    .venv/bin/python benchmarks/trainer_throughput.py [--preset micro] [--tokens 60000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from proxies.documents import prepare_documents  # noqa: E402
from proxies.model import build_model, resolve_shape  # noqa: E402
from proxies.sources import SMOKE_DOMAINS, build_sources  # noqa: E402
from proxies.tokens import TokenCorpus, build_token_arrays  # noqa: E402
from proxies.train import TrainConfig, train_model  # noqa: E402


def smoke_corpus(cache: Path, vocab: int) -> TokenCorpus:
    raw = cache / "raw"
    results = build_sources(
        raw, domains=list(SMOKE_DOMAINS), cap_bytes=1_000_000, install=False, log=lambda _: None
    )
    dirs = {r.domain: r.path for r in results if r.ok}
    manifest = prepare_documents(
        dirs, cache / "docs", cap_bytes=1_000_000, val_fraction=0.05, seed=0
    )
    return build_token_arrays(
        cache / "docs",
        cache / f"tokens-{vocab}",
        domains=sorted(dirs),
        docs_fingerprint=manifest.fingerprint,
        vocab_size=vocab,
        sample_bytes=2_000_000,
    )


def plain_loop(corpus: TokenCorpus, cfg: TrainConfig, seed: int) -> float:
    """Tokens/s of a hand-written loop (same model and initialisation, same batch shape)."""
    data = np.concatenate([corpus.array(d, "train") for d in corpus.domains])
    model = build_model(
        resolve_shape(cfg.model), vocab_size=corpus.vocab_size, seq_len=cfg.seq_len, seed=seed
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(seed)
    window = np.arange(cfg.seq_len + 1)

    def get_batch() -> torch.Tensor:
        starts = rng.integers(0, len(data) - cfg.seq_len - 1, size=cfg.batch_size)
        return torch.from_numpy(data[starts[:, None] + window].astype(np.int64))

    start = time.perf_counter()
    for _ in range(cfg.steps):
        batch = get_batch()
        logits = model(input_ids=batch[:, :-1], use_cache=False).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return cfg.steps * cfg.batch_size * cfg.seq_len / (time.perf_counter() - start)


def trainer(corpus: TokenCorpus, cfg: TrainConfig, seed: int) -> float:
    domains = list(corpus.domains)
    weights = np.full(len(domains), 1.0 / len(domains))
    res = train_model(
        corpus, train_domains=domains, weights=weights, eval_domains=domains[:1], cfg=cfg, seed=seed
    )
    return res.tokens_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="micro")
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=60_000, help="tokens per measured run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", default=str(ROOT / "benchmarks/out/cache"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/trainer_throughput"))
    args = parser.parse_args()

    corpus = smoke_corpus(Path(args.cache), args.vocab)
    cfg = TrainConfig(
        model=args.preset,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        train_tokens=args.tokens,
        eval_tokens=256,
    )
    warm = cfg.model_copy(update={"train_tokens": cfg.batch_size * cfg.seq_len * 3})
    plain_loop(corpus, warm, 0), trainer(corpus, warm, 0)  # warm-up: allocator, kernels
    plain, ours = [], []
    for i in range(args.repeats):  # alternate, so drifting machine load hits both alike
        plain.append(plain_loop(corpus, cfg, i))
        ours.append(trainer(corpus, cfg, i))
        print(f"repeat {i}: plain {plain[-1]:.0f} tok/s, trainer {ours[-1]:.0f} tok/s")
    result = {
        "preset": args.preset,
        "vocab": corpus.vocab_size,
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "tokens_per_run": args.tokens,
        "repeats": args.repeats,
        "plain_tokens_per_s": statistics.median(plain),
        "trainer_tokens_per_s": statistics.median(ours),
        "ratio": statistics.median(ours) / statistics.median(plain),
        "torch_threads": torch.get_num_threads(),
        "nproc": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "load_avg_1m": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/trainer_throughput.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(
        "| preset | vocab | batch x seq | plain tok/s | trainer tok/s | ratio |\n"
        "|---|---|---|---|---|---|\n"
        f"| {args.preset} | {corpus.vocab_size} | {args.batch_size}x{args.seq_len} | "
        f"{result['plain_tokens_per_s']:.0f} | {result['trainer_tokens_per_s']:.0f} | "
        f"{result['ratio']:.3f} |\n\n`{result['command']}` on {result['nproc']} cores, "
        f"load {result['load_avg_1m']:.1f}, {result['date']}\n"
    )


if __name__ == "__main__":
    main()
