"""``mixopt surrogate cv`` and ``mixopt bench replay``: measure surrogates and optimizers on
existing run tables. No Prefect here: both are plain computations on a Parquet run table.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mixtures.errors import ConfigError, DataError
from mixtures.io import atomic_write_text
from mixtures.names import DEFAULT_BO_SURROGATE, DEFAULT_SURROGATE, OPTIMIZER_NAMES, SURROGATE_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``surrogate`` (``cv``) and ``bench`` (``replay``) command groups."""
    group = subparsers.add_parser("surrogate", help="measure surrogates on run tables")
    sub = group.add_subparsers(dest="surrogate_command", metavar="{cv}", required=True)
    cv = sub.add_parser(
        "cv",
        help="fit a surrogate on random subsets of N runs; Spearman, Pearson, MAE per N",
        description="Without --test, each subset is scored on the runs it leaves out; with "
        "--test (repeatable), on every run of those tables instead.",
    )
    _common(cv)
    cv.add_argument(
        "--method", default=DEFAULT_SURROGATE, choices=SURROGATE_NAMES, help="surrogate"
    )
    cv.add_argument("--train-sizes", default="32,64,128", help="comma-separated N values")
    cv.add_argument("--repeats", type=int, default=10, help="random subsets per N")
    cv.add_argument("--test", type=Path, action="append", default=[], metavar="RUNS2")
    cv.set_defaults(func=surrogate_cv)

    group = subparsers.add_parser("bench", help="benchmarks on existing run tables")
    sub = group.add_subparsers(dest="bench_command", metavar="{replay}", required=True)
    rp = sub.add_parser(
        "replay",
        help="replay an optimizer on a pool of finished runs: runs to the top 1%%, regret",
    )
    _common(rp)
    rp.add_argument("--optimizer", default="bo", choices=OPTIMIZER_NAMES)
    rp.add_argument("--surrogate", choices=SURROGATE_NAMES, help="surrogate (regmix, bo)")
    rp.add_argument("--budget", type=int, default=64, help="runs per repeat")
    rp.add_argument("--repeats", type=int, default=20)
    rp.add_argument(
        "--batch",
        default="1",
        help="runs asked per round after the initial design; 'all' = one shot (RegMix)",
    )
    rp.add_argument(
        "--n-init",
        type=int,
        help="runs before the model chooses (regmix, bo): random draws, or with --low-fidelity "
        "the prior's best",
    )
    rp.add_argument(
        "--low-fidelity",
        type=Path,
        metavar="RUNS2",
        help="bo only: a run table of cheaper runs (smaller models, fewer tokens) with the same "
        "domains and target; a surrogate fitted on them ranks the first runs and is an input of "
        "the GP",
    )
    rp.add_argument(
        "--low-fidelity-domains",
        action="append",
        default=[],
        metavar="PATTERN=NAME",
        help="map --low-fidelity's domains onto RUNS' domains, first match wins, repeatable; "
        "one '*' per side carries over, matches of one name are summed (an earlier swarm whose "
        "domains changed: --low-fidelity-domains 's2pdf:*=s2pdfv1:*' --low-fidelity-domains "
        "'*=existing')",
    )
    rp.add_argument(
        "--low-fidelity-surrogate",
        default=DEFAULT_SURROGATE,
        choices=SURROGATE_NAMES,
        help=f"surrogate fitted on --low-fidelity (default {DEFAULT_SURROGATE})",
    )
    rp.add_argument(
        "--kernel-from",
        type=Path,
        metavar="RUNS3",
        help="bo only: a run table of earlier runs over the same domains (an earlier swarm, or "
        "this one's other evaluations); the GP's kernel and noise are fitted on it once and "
        "kept, instead of being fitted to the search's few runs (use with --surrogate gp_hybrid)",
    )
    rp.add_argument(
        "--kernel-target",
        metavar="EXPR",
        help="the metric or expression of --kernel-from's runs the kernel is fitted on "
        "(default: --target), in the same direction as --target",
    )
    rp.add_argument(
        "--kernel-domains",
        action="append",
        default=[],
        metavar="PATTERN=NAME",
        help="map --kernel-from's domains onto RUNS' domains, as --low-fidelity-domains does",
    )
    rp.add_argument("--top-fraction", type=float, default=0.01)
    rp.add_argument("--png", type=Path, help="regret plot (default: the --json path, .png)")
    rp.set_defaults(func=bench_replay)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", type=Path, metavar="RUNS", help="run table (.parquet)")
    p.add_argument("--target", required=True, help="metric name or expression, e.g. 'mean(a, b)'")
    p.add_argument("--maximize", action="store_true", help="higher target is better")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the subsets or repeats (>= 0)")
    p.add_argument("--json", type=Path, required=True, metavar="OUT", help="results file")
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes for the fits or repeats (default: the CPU count; same results for any)",
    )


def surrogate_cv(args: argparse.Namespace) -> int:
    """``mixopt surrogate cv``: print and write the scores per train size."""
    from cli.preflight import check_output_file, raise_problems
    from mixtures.evaluation import cross_validate
    from mixtures.runtable import RunTable

    raise_problems(check_output_file(args.json, "--json"))  # before the work, not after it
    table = RunTable.read(args.runs)
    X, y = table.weights(), table.target(args.target)
    tests = {}
    for path in args.test:
        other = RunTable.read(path)
        if other.domains != table.domains:
            raise DataError(
                f"test table {path} is over domains {list(other.domains)}, "
                f"{args.runs} over {list(table.domains)}"
            )
        tests[path.stem] = (other.weights(table.domains), other.target(args.target))
    result = cross_validate(
        X,
        y,
        surrogate=args.method,
        train_sizes=_sizes(args.train_sizes),
        repeats=args.repeats,
        seed=args.seed,
        tests=tests or None,
        workers=args.workers,
    )
    result.update(runs_file=str(args.runs), target=args.target, maximize=args.maximize)
    _write_json(args.json, result)
    print(f"{args.method} on {args.runs} ({len(y)} runs), target {args.target}")
    print(
        f"{'N':>5} {'test':<16} {'rep':>3} {'spearman':>9} {'pearson':>9} {'mae':>9} {'fit s':>6}"
    )
    for s in result["summary"]:
        print(
            f"{s['size']:>5} {s['test']:<16} {s['repeats']:>3} {_pct(s['spearman_mean']):>9} "
            f"{_pct(s['pearson_mean']):>9} {s['mae_mean']:>9.4f} {s['fit_seconds_mean']:>6.2f}"
        )
    print(f"wrote {args.json}")
    return 0


def bench_replay(args: argparse.Namespace) -> int:
    """``mixopt bench replay``: print and write runs-to-top and regret; plot the curves."""
    from cli.preflight import check_output_file, raise_problems
    from mixtures.evaluation import plot_regret, replay
    from mixtures.runtable import RunTable

    raise_problems(check_output_file(args.json, "--json"))
    png = args.png or args.json.with_suffix(".png")
    raise_problems(check_output_file(png, "--png"))
    table = RunTable.read(args.runs)
    X, y = table.weights(), table.target(args.target)
    params: dict[str, Any] = {}
    if args.surrogate:
        if args.optimizer == "random":
            raise ConfigError("--surrogate does not apply to --optimizer random")
        params["surrogate"] = args.surrogate
    if args.n_init is not None:
        if args.optimizer == "random":
            raise ConfigError("--n-init does not apply to --optimizer random")
        params["n_init"] = args.n_init
    if args.low_fidelity is None and (
        args.low_fidelity_domains or args.low_fidelity_surrogate != DEFAULT_SURROGATE
    ):
        raise ConfigError(
            "--low-fidelity-domains and --low-fidelity-surrogate need --low-fidelity CHEAP_RUNS"
        )
    if args.low_fidelity is not None:
        if args.optimizer != "bo":
            raise ConfigError("--low-fidelity applies to --optimizer bo only")
        params["low_fidelity"] = _low_fidelity(args, table.domains)
    if args.kernel_from is None and (args.kernel_domains or args.kernel_target):
        raise ConfigError("--kernel-domains and --kernel-target need --kernel-from EARLIER_RUNS")
    if args.kernel_from is not None:
        if args.optimizer != "bo":
            raise ConfigError("--kernel-from applies to --optimizer bo only")
        params["kernel_from"] = _kernel_from(args, table.domains)
    batch = _batch(args.batch)
    result = replay(
        X,
        y,
        domains=table.domains,
        optimizer=args.optimizer,
        budget=args.budget,
        repeats=args.repeats,
        seed=args.seed,
        maximize=args.maximize,
        batch=batch,
        top_fraction=args.top_fraction,
        optimizer_params=params,
        workers=args.workers,
    )
    result.update(runs_file=str(args.runs), target=args.target)
    if args.low_fidelity is not None:  # the fitted prior itself is not JSON
        result["params"]["low_fidelity"] = {
            "runs_file": str(args.low_fidelity),
            "surrogate": args.low_fidelity_surrogate,
            "domains": list(args.low_fidelity_domains),
        }
    if args.kernel_from is not None:  # nor is the fitted kernel
        result["params"]["kernel_from"] = {
            "runs_file": str(args.kernel_from),
            "target": args.kernel_target or args.target,
            "surrogate": args.surrogate or DEFAULT_BO_SURROGATE,
            "domains": list(args.kernel_domains),
        }
    _write_json(args.json, result)
    png = plot_regret(result, png)
    s = result["summary"]
    print(
        f"{args.optimizer} on {args.runs} ({len(y)} runs; top {result['top_runs']} = "
        f"{args.top_fraction:.0%}), budget {args.budget}, {args.repeats} repeats"
    )
    hits = [r["runs_to_top"] for r in result["per_repeat"]]
    print("runs to top per repeat: " + " ".join("-" if h is None else str(h) for h in hits))
    print(
        f"median runs to top: {s['runs_to_top_median']:g} (misses count as budget + 1; "
        f"hit rate {s['hit_rate']:.0%})"
    )
    saving = "not reached" if s["saving"] is None else f"{s['saving']:.1f}x"
    if result["random_start"] >= args.budget:
        start = "every run random"
    elif result["random_start"] == 0:
        start = "with no random run first"
    else:
        start = f"after {result['random_start']} random runs first"
    print(
        f"random search needs {s['random_expected_mean']:.1f} runs on average (median "
        f"{s['random_expected_median']:g}); saving: {saving}, at most "
        f"{s['saving_ceiling']:.1f}x {start}"
    )
    for k, v in s["regret_median"].items():
        print(f"median simple regret after {k:>3} runs: {v:.4f}")
    print(f"wrote {args.json} and {png}")
    return 0


def _low_fidelity(args: argparse.Namespace, domains: tuple[str, ...]) -> Any:
    """The ``LowFidelityPrior`` fitted on ``--low-fidelity``'s runs (same domains, target)."""
    import time

    from mixtures.surrogates import LowFidelityPrior, make_surrogate

    cheap, X = _earlier_runs(
        args.low_fidelity, "--low-fidelity", args.low_fidelity_domains, args.runs, domains
    )
    start = time.perf_counter()
    prior = LowFidelityPrior(make_surrogate(args.low_fidelity_surrogate, random_state=args.seed))
    prior.fit(X, cheap.target(args.target), domains=domains)
    print(
        f"low-fidelity prior: {args.low_fidelity_surrogate} fitted on {len(cheap)} runs of "
        f"{args.low_fidelity} in {time.perf_counter() - start:.1f} s"
    )
    return prior


def _kernel_from(args: argparse.Namespace, domains: tuple[str, ...]) -> Any:
    """The ``TransferredKernel`` of BO's GP fitted on ``--kernel-from``'s runs, on the scale BO
    models (``--kernel-target`` negated with ``--maximize``)."""
    import time

    from mixtures.surrogates import GPSurrogate, TransferredKernel, make_surrogate

    earlier, X = _earlier_runs(
        args.kernel_from, "--kernel-from", args.kernel_domains, args.runs, domains
    )
    expr = args.kernel_target or args.target
    y = earlier.target(expr)
    surrogate = args.surrogate or DEFAULT_BO_SURROGATE
    gp = make_surrogate(surrogate, random_state=args.seed)
    if not isinstance(gp, GPSurrogate):
        raise ConfigError(
            f"a transferred kernel comes from a single GP surrogate (e.g. 'gp_hybrid'), "
            f"got {surrogate!r}"
        )
    start = time.perf_counter()
    kernel = TransferredKernel(gp)
    kernel.fit(X, -y if args.maximize else y, domains=domains)
    print(
        f"transferred kernel: {surrogate} fitted on {len(earlier)} runs of {args.kernel_from} "
        f"({expr}) in {time.perf_counter() - start:.1f} s"
    )
    return kernel


def _earlier_runs(
    path: Path, flag: str, mapping: list[str], runs: Path, domains: tuple[str, ...]
) -> tuple[Any, np.ndarray]:
    """The run table at ``path`` and its weights over ``domains``: in the same order, or mapped
    by ``mapping``'s PATTERN=NAME rules (``flag``-domains)."""
    from mixtures.runtable import RunTable, domain_map

    earlier = RunTable.read(path)
    if mapping:
        rules = []
        for text in mapping:
            pattern, sep, name = text.partition("=")
            if not sep or not pattern or not name:
                raise ConfigError(f"{flag}-domains takes PATTERN=NAME, got {text!r}")
            rules.append((pattern, name))
        return earlier, earlier.weights() @ domain_map(earlier.domains, domains, rules)
    if earlier.domains != domains:
        raise DataError(
            f"{flag} table {path} is over domains {list(earlier.domains)}, {runs} over "
            f"{list(domains)}; map them with {flag}-domains"
        )
    return earlier, earlier.weights(domains)


def _seed(text: str) -> int:
    """``--seed``: a whole number >= 0 (numpy's seeds are)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def _sizes(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--train-sizes expects integers like 32,64,128, got {text!r}") from None


def _batch(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--batch expects an integer or 'all', got {text!r}") from None


def _pct(v: float | None) -> str:
    """A score as a percentage; "n/a" where it is undefined (None, ``evaluation.score``)."""
    return "n/a" if v is None else f"{100 * v:.1f}"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, default=_jsonable) + "\n")


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
