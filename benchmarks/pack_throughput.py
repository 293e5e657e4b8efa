"""Packed proxies (``proxies.pack``): throughput against one model at a time, and agreement of
packed with solo runs over an experiment's proxies.

``pack_throughput`` trains K stacked proxies and the same shape one model after another, back
to back in one process, and reports both rates and the model FLOPs as a share of the machine's
measured matmul rate. ``pack_agreement`` retrains a finished experiment's packed proxies one at
a time and ranks both (with a control: the same run with its initial weights perturbed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from benchmarks.suite import Case, Column, Params, col, one_table
from benchmarks.trainer_throughput import smoke_corpus


def experiment_runs(experiment: str | None, work: Path) -> tuple[Path, Path, str | None]:
    """(run store, token folder, target domain) of a finished experiment folder, or, for None,
    of a tiny packed sweep trained in ``work`` (smoke runs); the target domain is None for an
    experiment (the caller names it)."""
    if experiment is None:
        return _tiny_packed_store(work)
    exp = Path(experiment)
    tokens = Path(json.loads((exp / "plan.json").read_text())["tokens_dir"])
    return exp / "proxy_runs", tokens, None


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

CASES = [
    Case(name="pack_throughput", params=PackParams, run=run_packs, tables=one_table(PACK_COLUMNS))
]


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

    store_dir, tokens, smoke_domain = experiment_runs(p.experiment, work)
    domain = smoke_domain or p.target_domain
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
