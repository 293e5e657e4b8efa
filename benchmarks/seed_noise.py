"""How much of a proxy's loss is the mixture, and how much the seed? The demo swarm, retrained.

benchmarks/own_swarm.py found the held-out ``tech_docs`` loss much harder to rank than the
trained domains' losses (Spearman 54-73 against 77-98). Either the mixture moves it less than
training noise does, or the surrogates miss its shape. This script retrains mixtures of the
committed demo swarm (data/mixopt_demo_swarm) with the demo's proxy config:

- the first ``--check`` of them with seed 0, as in the swarm: their losses must equal the
  committed ones (same config + seed, same numbers on CPU);
- the first ``--n`` of them with seed 1 (another initialisation and batch order).

Per domain it reports the Spearman correlation between the two seeds' losses over the same
mixtures: the test-retest reliability, a ceiling for any surrogate's ranking of one seed's
losses. Needs the demo corpus (``mixopt prepare-corpus --config configs/demo.yaml``, or any
finished demo) in its cache folder.

    .venv/bin/python benchmarks/seed_noise.py          # 64 + 8 proxies, about 6 minutes, 2 cores

Writes benchmarks/results/seed_noise.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    load_results,
    run_meta,
    save_results,
    write_md,
)
from configs.schema import load_config  # noqa: E402
from mixtures.mixture import Mixture  # noqa: E402
from mixtures.runtable import RunTable  # noqa: E402
from proxies.runs import RunSpec, RunStore, execute_run  # noqa: E402
from proxies.tokens import TokenCorpus  # noqa: E402
from tasks.common import corpus_key  # noqa: E402

POOL = ROOT / "data" / "mixopt_demo_swarm" / "runs.parquet"


def losses(
    table: RunTable, rows: range, seed: int, corpus: TokenCorpus, store: RunStore, cfg: Any
) -> dict[str, list[float]]:
    """Per domain, the validation losses of the pool's ``rows`` retrained with ``seed``."""
    out: dict[str, list[float]] = {}
    for i in rows:
        spec = RunSpec.for_mixture(
            Mixture.from_array(table.domains, table.weights()[i], tolerance=1e-6),
            kind="proxy",
            corpus=corpus,
            train_domains=table.domains,
            eval_domains=list(corpus.domains),
            train=cfg.proxy,
            seed=seed,
        )
        rec, _ = execute_run(spec, corpus, store)
        if rec["result"]["status"] != "ok":
            raise SystemExit(f"run {rec['run_id']} {rec['result']['status']}: {rec['result']}")
        for d, v in rec["result"]["val_loss"].items():
            out.setdefault(d, []).append(v)
    return out


def twice_the_tokens(cfg: Any) -> Any:
    """``cfg`` with its proxies trained on twice the tokens (the remedies' longer proxy)."""
    proxy = cfg.proxy.model_copy(update={"train_tokens": 2 * cfg.proxy.train_tokens})
    return cfg.model_copy(update={"proxy": proxy})


def demo_corpus(cfg: Any, tokens: Path | None = None) -> TokenCorpus:
    """The demo config's token corpus from its cache folder (or ``tokens``)."""
    c = cfg.corpus
    tokens = tokens or ROOT / c.cache_dir / f"{c.source}-{corpus_key(c)}" / "tokens"
    if not Path(tokens).is_dir():
        raise SystemExit(f"no demo corpus at {tokens}; run mixopt prepare-corpus first")
    return TokenCorpus.load(tokens)


def run(args: argparse.Namespace, argv: list[str] | None) -> tuple[dict, dict]:
    cfg = load_config(ROOT / "configs" / "demo.yaml")
    corpus = demo_corpus(cfg, args.tokens)
    table = RunTable.read(args.pool)
    store = RunStore(args.store)
    started = time.perf_counter()
    check = losses(table, range(args.check), 0, corpus, store, cfg)
    committed = {d: table.target(f"val_loss/{d}")[: args.check].tolist() for d in check}
    max_diff = max(abs(a - b) for d in check for a, b in zip(check[d], committed[d], strict=True))
    seed1 = losses(table, range(args.n), 1, corpus, store, cfg)
    rows = {}
    for d, values in seed1.items():
        base = table.target(f"val_loss/{d}")[: args.n]
        diff = np.asarray(values) - base
        rows[d] = {
            "spearman": float(spearmanr(base, values)[0]),
            "mixture_std": float(np.std(base, ddof=1)),
            "seed_diff_std": float(np.std(diff, ddof=1)),
            "mean_shift": float(np.mean(diff)),
        }
    meta = run_meta(
        "seed_noise.py",
        argv,
        wall_seconds=time.perf_counter() - started,
        n=args.n,
        check=args.check,
        max_abs_diff_seed0=max_diff,
    )
    return meta, rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pool", type=Path, default=POOL)
    p.add_argument("--tokens", type=Path, help="the demo corpus's tokens folder")
    p.add_argument("--n", type=int, default=64, help="mixtures retrained with seed 1")
    p.add_argument("--check", type=int, default=8, help="mixtures retrained with seed 0")
    p.add_argument("--store", type=Path, default=Path("/tmp/mixopt_seed_noise"))
    p.add_argument("--out", type=Path, default=RESULTS / "seed_noise.json")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    args = p.parse_args(argv)
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        meta, rows = run(args, argv)
        save_results(args.out, meta, rows)
    lines = [
        "| domain | Spearman, seed 0 vs seed 1 | loss std over mixtures | std of the seed "
        "difference | mean shift (seed 1 - seed 0) |",
        "|---|---|---|---|---|",
    ]
    for d, r in sorted(rows.items(), key=lambda kv: kv[1]["spearman"]):
        lines.append(
            f"| {d} | {100 * r['spearman']:.1f} | {r['mixture_std']:.4f} | "
            f"{r['seed_diff_std']:.4f} | {r['mean_shift']:+.4f} |"
        )
    md = (
        "# Seed noise of the demo swarm's losses\n\n"
        f"Command: `{meta['command']}`  \nDate: {meta['date']}; machine: {meta['machine']}; "
        f"{meta['wall_seconds']:.0f} s in all\n\n"
        f"The first {meta['check']} mixtures of data/mixopt_demo_swarm retrained with seed 0: "
        f"largest difference to the committed losses {meta['max_abs_diff_seed0']:.2g}. The "
        f"first {meta['n']} retrained with seed 1; per domain (lowest reliability first):\n\n"
        + "\n".join(lines)
        + "\n"
    )
    write_md(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
