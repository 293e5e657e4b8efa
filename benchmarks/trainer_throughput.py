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

import json
import statistics
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal

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


class PackParams(Params):
    """Packed trainer: aggregate tokens/s of K stacked proxies against the same models trained
    one after another (goals on 2 CPU cores: never slower, >= 1.2x at micro K=16)."""

    smoke: ClassVar[Mapping[str, Any]] = {
        "presets": ["nano"],
        "precisions": ["fp32"],
        "packs": [1, 2],
        "vocab": 300,
        "seq_len": 32,
        "batch_size": 4,
        "steps": 3,
        "solo_models": 2,
        "corpus_mb": 0.2,
        "matmul_size": 256,
    }

    presets: list[str] = ["micro", "small", "base"]
    """Model presets (``proxies.config.PRESETS``)."""
    precisions: list[Literal["fp32", "bf16"]] = ["fp32", "bf16"]
    packs: list[int] = [1, 2, 4, 8, 16, 32]
    """Pack sizes K."""
    device: Literal["cpu", "cuda"] = "cpu"
    vocab: int = 1024
    """BPE vocabulary of the smoke corpus (the demo's)."""
    seq_len: int = 128
    batch_size: int = 8
    """Sequences per step and model (the demo's proxies: 8 x 128)."""
    steps: int = Field(12, ge=2)
    """Measured optimizer steps per run (after one warm-up run per shape and precision)."""
    solo_models: int = Field(32, ge=1)
    """At most this many of a pack's K models are also trained one after another, just before
    the pack, for the one-at-a-time rate (the same seeds and shape; a smaller number saves time
    at large K)."""
    corpus_mb: float = Field(0.5, gt=0)
    matmul_size: int = Field(2048, ge=64)
    """Square matmul of the peak-rate measurement."""


def matmul_rate(dtype: Any, *, size: int, device: str, seconds: float = 1.0) -> float:
    """Measured GFLOP/s of a square ``size`` matmul in ``dtype`` (the machine's reachable peak)."""
    import torch

    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    for _ in range(3):
        a @ b
    n, start = 0, time.perf_counter()
    while True:
        a @ b
        n += 1
        if device == "cuda":
            torch.cuda.synchronize()
        if time.perf_counter() - start > seconds:
            break
    return 2 * size**3 * n / (time.perf_counter() - start) / 1e9


def flops_per_token(shape: Any, *, vocab: int, seq_len: int) -> float:
    """Training FLOPs per token: 6 x (non-embedding parameters + the output layer) plus the
    attention scores (6 x layers x seq_len x d_model, forward and backward)."""
    d, f, L = shape.d_model, shape.d_ff, shape.n_layers
    kv = shape.kv_heads * (d // shape.n_heads)
    params = L * (2 * d * d + 2 * d * kv + 3 * d * f) + vocab * d
    return 6.0 * params + 6.0 * L * seq_len * d


def run_packs(p: PackParams, work: Path) -> list[dict[str, Any]]:
    import numpy as np
    import torch

    from proxies.pack import Member, train_pack
    from proxies.train import TrainConfig, train_model

    corpus = smoke_corpus(work, vocab=p.vocab, cap_bytes=int(p.corpus_mb * 1e6))
    domains = list(corpus.domains)
    rng = np.random.default_rng(0)
    peaks = {
        "fp32": matmul_rate(torch.float32, size=p.matmul_size, device=p.device),
        "bf16": matmul_rate(torch.bfloat16, size=p.matmul_size, device=p.device),
    }
    print(f"matmul GFLOP/s: fp32 {peaks['fp32']:.0f}, bf16 {peaks['bf16']:.0f}")
    rows = []
    for preset in p.presets:
        for precision in p.precisions:
            cfg = TrainConfig(
                model=preset,
                seq_len=p.seq_len,
                batch_size=p.batch_size,
                train_tokens=p.steps * p.batch_size * p.seq_len,
                eval_tokens=max(64, p.seq_len),
                device=p.device,
                precision=precision,
            )
            flops = flops_per_token(cfg.shape, vocab=corpus.vocab_size, seq_len=p.seq_len)

            def mixture() -> Any:
                return rng.dirichlet(np.ones(len(domains)))

            def solo_rate(k: int, cfg: TrainConfig) -> float:
                """Aggregate tokens/s of k models trained one after another."""
                tokens, seconds = 0, 0.0
                for i in range(k):
                    res = train_model(
                        corpus,
                        train_domains=domains,
                        weights=mixture(),
                        eval_domains=domains[:1],
                        cfg=cfg,
                        seed=i,
                    )
                    tokens += res.tokens
                    seconds += res.tokens / res.tokens_per_second
                return tokens / seconds

            def pack_rate(k: int, cfg: TrainConfig) -> float:
                members = [Member(seed=i, weights=mixture()) for i in range(k)]
                results = train_pack(
                    corpus,
                    train_domains=domains,
                    members=members,
                    eval_domains=domains[:1],
                    cfg=cfg,
                )
                return sum(r.tokens_per_second for r in results)

            solo_rate(1, cfg), pack_rate(2, cfg)  # warm-up: allocator, kernels, first-call costs
            for k in p.packs:
                # back to back, so that a drifting machine load hits both alike
                solo = solo_rate(min(k, p.solo_models), cfg)
                rate = pack_rate(k, cfg)
                row = {
                    "preset": preset,
                    "precision": precision,
                    "device": p.device,
                    "pack": k,
                    "solo_tokens_per_s": solo,
                    "pack_tokens_per_s": rate,
                    "speedup": rate / solo,
                    "model_gflops": rate * flops / 1e9,
                    "peak_share": rate * flops / 1e9 / peaks[precision],
                    "peak_gflops": peaks[precision],
                }
                print(
                    f"{preset} {precision} K={k}: pack {rate:.0f} tok/s, one at a time "
                    f"{solo:.0f}, {row['speedup']:.2f}x, {row['peak_share']:.1%} of the "
                    f"{precision} matmul peak",
                    flush=True,
                )
                rows.append(row)
    return rows


PACK_COLUMNS: list[Column] = [
    ("preset", col("preset")),
    ("precision", col("precision")),
    ("device", col("device")),
    ("K", col("pack")),
    ("one at a time tok/s", col("solo_tokens_per_s", ".0f")),
    ("pack tok/s", col("pack_tokens_per_s", ".0f")),
    ("speedup", col("speedup", ".2f")),
    ("model GFLOP/s", col("model_gflops", ".1f")),
    ("share of matmul peak", lambda r: f"{100 * r['peak_share']:.1f}%"),
]

CASES.append(
    Case(name="pack_throughput", params=PackParams, run=run_packs, tables=one_table(PACK_COLUMNS))
)


class PackAgreementParams(Params):
    """Packed against solo training over an experiment's proxies: Spearman of their target
    losses (goal >= 0.99), and the largest per-run difference."""

    smoke: ClassVar[Mapping[str, Any]] = {"experiment": None, "limit": 3}

    experiment: str | None = "runs/demo"
    """A finished experiment whose proxies trained as packs (``proxy.pack``); None: a tiny
    packed sweep trained here first (for the smoke run)."""
    target_domain: str = "tech_docs"
    """The validation loss compared (the demo's target)."""
    limit: int | None = None
    """At most this many runs (None: all)."""
    variant: Literal["solo", "compile", "perturbed"] = "solo"
    """What is compared: the packed runs with each run trained alone (``solo``: ``pack: 1``) or
    alone with ``compile: true``; or, as a control, each run alone with the same run whose
    initial weights are scaled by 1 + 1e-6 noise (``perturbed``): how far float rounding alone
    moves these runs."""


def _tiny_packed_store(work: Path) -> tuple[Path, Path, str]:
    """A packed sweep of 4 nano runs on the smoke corpus: (store, tokens, target domain)."""
    import numpy as np

    from mixtures.mixture import Mixture
    from proxies.runs import RunSpec, RunStore, execute_pack
    from proxies.train import TrainConfig

    corpus = smoke_corpus(work, vocab=300, cap_bytes=200_000)
    domains = tuple(corpus.domains)
    cfg = TrainConfig(model="nano", seq_len=32, batch_size=4, train_tokens=2048, eval_tokens=64)
    rng = np.random.default_rng(0)
    specs = [
        RunSpec.for_mixture(
            Mixture(dict(zip(domains, rng.dirichlet(np.ones(len(domains))).tolist(), strict=True))),
            kind="proxy",
            corpus=corpus,
            train_domains=domains,
            eval_domains=domains,
            train=cfg.model_copy(update={"pack": 4}),
            seed=0,
        )
        for _ in range(4)
    ]
    store = RunStore(work / "packed")
    execute_pack(specs, corpus, store)
    return store.root, corpus.path, domains[0]


@contextmanager
def _perturbed_init(relative: float) -> Iterator[None]:
    """Within the block, models built by ``proxies.train`` start from their seed's weights, each
    matrix scaled element-wise by 1 + ``relative`` x standard normal noise (seeded)."""
    import torch

    import proxies.train as train_module

    real = train_module.build_model

    def build(*args: Any, **kwargs: Any) -> Any:
        model = real(*args, **kwargs)
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for param in model.parameters():
                if param.ndim >= 2:
                    param.mul_(1 + relative * torch.randn(param.shape, generator=gen))
        return model

    train_module.build_model = build
    try:
        yield
    finally:
        train_module.build_model = real


def run_agreement(p: PackAgreementParams, work: Path) -> list[dict[str, Any]]:
    import numpy as np
    from scipy.stats import spearmanr

    from proxies.runs import RunSpec, RunStore
    from proxies.tokens import TokenCorpus
    from proxies.train import train_model

    if p.experiment is None:
        store_dir, tokens, domain = _tiny_packed_store(work)
    else:
        exp = Path(p.experiment)
        store_dir = exp / "proxy_runs"
        tokens = Path(json.loads((exp / "plan.json").read_text())["tokens_dir"])
        domain = p.target_domain
    records = [
        r
        for r in RunStore(store_dir).records()
        if r.get("pack", {}).get("size", 1) > 1 and r["result"]["status"] == "ok"
    ][: p.limit]
    corpus = TokenCorpus.load(tokens)

    def train_alone(spec: RunSpec, *, compile: bool = False) -> float:
        cfg = spec.train.model_copy(update={"pack": 1, "compile": compile})
        res = train_model(
            corpus,
            train_domains=spec.domains,
            weights=np.asarray(spec.weights),
            eval_domains=(domain,),
            cfg=cfg,
            seed=spec.seed,
        )
        return res.val_loss[domain]

    packed, alone = [], []
    for r in records:
        spec = RunSpec.model_validate(r["spec"])
        if p.variant == "perturbed":
            packed.append(train_alone(spec))
            with _perturbed_init(1e-6):
                alone.append(train_alone(spec))
        else:
            packed.append(r["result"]["val_loss"][domain])
            alone.append(train_alone(spec, compile=p.variant == "compile"))
        print(f"{r['run_id']}: reference {packed[-1]:.4f}, {p.variant} {alone[-1]:.4f}", flush=True)
    diffs = np.abs(np.subtract(packed, alone))
    return [
        {
            "variant": p.variant,
            "runs": len(records),
            "domain": domain,
            "spearman": float(spearmanr(packed, alone).statistic),
            "max_abs_diff": float(diffs.max()),
            "mean_abs_diff": float(diffs.mean()),
            "loss_range": float(np.ptp(packed)),
        }
    ]


AGREEMENT_COLUMNS: list[Column] = [
    ("compared", lambda r: _COMPARED[r["variant"]]),
    ("runs", col("runs")),
    ("loss compared", col("domain")),
    ("Spearman", col("spearman", ".4f")),
    ("max abs diff", col("max_abs_diff", ".4f")),
    ("mean abs diff", col("mean_abs_diff", ".4f")),
    ("spread of the losses", col("loss_range", ".3f")),
]

_COMPARED = {
    "solo": "packed vs solo",
    "compile": "packed vs solo compiled",
    "perturbed": "solo vs solo with 1e-6 init noise",
}

CASES.append(
    Case(
        name="pack_agreement",
        params=PackAgreementParams,
        run=run_agreement,
        tables=one_table(AGREEMENT_COLUMNS),
    )
)
