"""The `mixopt` command line: runs the flows and the offline run-table tools."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cli.errors import add_debug_option, flow_errors_once, run_command
from mixtures.errors import ConfigError, MixoptError, MixtureError, RunError

if TYPE_CHECKING:
    from configs.experiment import ExperimentDir
    from configs.schema import ExperimentConfig


def _env_defaults() -> None:
    # Offline machines: no telemetry; set before prefect is imported.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The temporary local server can take more than Prefect's default 20 s to start on a busy
    # 2-core machine; waiting longer beats failing the whole run.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _config(args: argparse.Namespace, *, experiment_dir: bool) -> ExperimentConfig:
    """The config with ``--set`` applied, its domains, weight bounds and paths checked, and
    with ``experiment_dir`` the experiment folder too: every problem at once, before any server
    starts (cli.preflight)."""
    from cli import preflight
    from configs.schema import load_config

    config = load_config(args.config, overrides=args.set)
    problems = preflight.check_experiment(config)
    if experiment_dir:
        what = "--experiment-dir" if args.experiment_dir else "experiment folder"
        problems += preflight.check_writable_folder(_experiment(config, args).root, what)
    preflight.raise_problems(problems)
    return config


def _experiment(config: ExperimentConfig, args: argparse.Namespace) -> ExperimentDir:
    """The experiment folder: ``--experiment-dir``, else ``runs/<name>``."""
    from configs.experiment import ExperimentDir

    return ExperimentDir.of(config.name, args.experiment_dir)


def _api():
    """Prefect's temporary server, started before anything else (see runtime.server.TemporaryAPI).
    Imported here: `mixopt runs ...` and `--help` need no server code."""
    from runtime.server import TemporaryAPI

    return TemporaryAPI()


def _print_summary(summary: dict) -> None:
    chosen = summary["chosen"]
    print("\nChosen mixture:")
    for domain, weight in sorted(chosen["mixture"].items(), key=lambda kv: -kv[1]):
        print(f"  {domain:<16} {weight:.4f}")
    std = chosen.get("predicted_std")
    print(
        f"predicted target (proxy scale): {chosen['predicted']:.4f}"
        + (f" ± {std:.4f}" if std is not None else "")
    )
    _print_comparison(summary.get("comparison") or [])
    handoff = summary.get("target_handoff")
    if handoff and handoff["where"] == "deployment":
        print(handoff["message"])
    print(f"report: {summary['report']}")


def _print_comparison(rows: list[dict]) -> None:
    """The target runs' table, then the paired comparison per baseline and the verdict."""
    if not rows:
        return
    from mixtures.report import paired_lines

    print("\nTarget runs (the target at target scale, lower is better):")
    print(f"  {'mixture':<10} {'mean':>8} {'std':>8} {'seeds':>5}")
    for r in rows:
        print(f"  {r['label']:<10} {r['mean']:8.4f} {r['std']:8.4f} {r['seeds']:5d}")
    for line in paired_lines(rows):
        print(line)


def _bind(args: argparse.Namespace, config) -> None:
    """Refuse (or with --force, move aside) the results of another config in the experiment
    folder, before any server starts (configs.binding)."""
    from configs.binding import bind_experiment_dir
    from configs.experiment import ExperimentDir

    exp = ExperimentDir.of(config.name, args.experiment_dir)
    bind_experiment_dir(
        exp, config, force=args.force, say=lambda m: print(f"mixopt: {m}", file=sys.stderr)
    )


def cmd_optimize(args: argparse.Namespace) -> int:
    config = _config(args, experiment_dir=True)
    _bind(args, config)
    with _api() as api:
        from flows.optimize import optimize_mixture

        with api.running(), flow_errors_once(debug=args.debug):
            summary = optimize_mixture(config, args.experiment_dir)
    _print_summary(summary)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    config = _config(args, experiment_dir=True)
    _bind(args, config)
    with _api() as api:
        from flows.sweep import sweep

        with api.running(), flow_errors_once(debug=args.debug):
            out = sweep(config, args.experiment_dir)
    if out.n_ok == 0:
        raise RunError(f"no proxy run finished ok: see the status and errors in {out.meta}")
    print(f"{out.n_ok} runs finished ok; run table: {out.table}; metadata: {out.meta}")
    return 0


def cmd_prepare_corpus(args: argparse.Namespace) -> int:
    config = _config(args, experiment_dir=False)
    with _api() as api:
        from flows.prepare_corpus import prepare_corpus

        with api.running(), flow_errors_once(debug=args.debug):
            tokens = prepare_corpus(config)
    print(f"token corpus: {tokens}")
    return 0


def _parse_weights(text: str) -> dict[str, float]:
    """``--weights a=0.5,b=0.5``: each domain once, each weight a number; they must sum to 1."""
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise MixoptError(f"--weights expects domain=weight,..., got {item!r}")
        if name in out:
            raise MixtureError(f"--weights names {name!r} twice")
        try:
            out[name] = float(value)
        except ValueError:
            raise MixoptError(f"--weights: weight of {name!r} is not a number: {value!r}") from None
    return _summing_to_one(out, "--weights")


def _summing_to_one(weights: dict[str, float], origin: str) -> dict[str, float]:
    """``weights`` when each is finite and >= 0 and they sum to 1 (within ``SUM_TOLERANCE``); a
    MixtureError naming ``origin`` and the values otherwise. They are not normalized: a sum off
    1 is most often a typo."""
    from cli.preflight import check_weights

    problems = check_weights(weights, origin)
    if problems:
        raise MixtureError(problems[0])
    return weights


def cmd_target_run(args: argparse.Namespace) -> int:
    from cli import preflight

    config = _config(args, experiment_dir=True)
    exp = _experiment(config, args)
    if args.weights is not None and args.mixture is not None:
        raise ConfigError("give --mixture FILE or --weights a=0.5,b=0.5, not both")
    if args.weights is not None:
        weights, origin = _parse_weights(args.weights), "--weights"
    else:
        path = Path(args.mixture) if args.mixture else exp.chosen
        weights, origin = _read_mixture(path), f"--mixture {path}"
    preflight.raise_problems(
        preflight.check_mixture_domains(weights, config, origin)
        + preflight.check_label(args.label, config)
    )
    with _api() as api:
        from flows.target_run import target_run

        with api.running(), flow_errors_once(debug=args.debug):
            rows = target_run(config, {args.label: weights}, str(exp))
    _print_comparison(rows)
    return 0


def _read_mixture(path: Path) -> dict[str, float]:
    """A mixture JSON file: ``{"mixture": {...}}`` (chosen.json) or ``{domain: weight}``."""
    if path.is_dir():
        raise MixoptError(f"--mixture {path} is a folder; name a JSON file")
    if not path.is_file():
        raise MixoptError(
            f"no mixture to run: {path} does not exist (run `mixopt optimize` "
            "first, or pass --mixture FILE or --weights a=0.5,b=0.5)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MixoptError(f"--mixture {path} is not a JSON file: {err}") from None
    weights = data.get("mixture", data) if isinstance(data, dict) else None
    if not isinstance(weights, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in weights.values()
    ):
        raise MixoptError(f"--mixture {path} must hold an object of domain: weight numbers")
    return _summing_to_one({str(k): float(v) for k, v in weights.items()}, f"--mixture {path}")


def _flow_parser(sub, name: str, func: Callable, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--config", required=True, help="experiment YAML (e.g. configs/demo.yaml)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value (YAML syntax), repeatable",
    )
    p.set_defaults(func=func)
    return p


def _result_folder_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment-dir", help="results folder (default runs/<experiment name>)")
    p.add_argument(
        "--force",
        action="store_true",
        help="if the folder holds results of a config that differs in a field that changes "
        "results, move them to <folder>/previous/<UTC time>/ and start afresh (finished proxy "
        "runs are kept and reused)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixopt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = _flow_parser(sub, "optimize", cmd_optimize, "run optimize_mixture end to end")
    _result_folder_arguments(p)
    p = _flow_parser(sub, "sweep", cmd_sweep, "build the corpus and run the proxy sweep only")
    _result_folder_arguments(p)
    _flow_parser(sub, "prepare-corpus", cmd_prepare_corpus, "build or reuse the corpus")
    p = _flow_parser(
        sub,
        "target-run",
        cmd_target_run,
        "train the target-scale model on a mixture and the baselines",
    )
    p.add_argument("--experiment-dir", help="results folder (default runs/<experiment name>)")
    p.add_argument("--mixture", help="JSON file with a mixture (default <experiment>/chosen.json)")
    p.add_argument("--weights", help="inline mixture: domain=weight,domain=weight")
    p.add_argument("--label", default="chosen", help="name of this mixture in the comparison")
    from cli import runs, serve, status, surrogate

    for module in (runs, surrogate, status, serve):
        module.register(sub)
    add_debug_option(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _env_defaults()
    args = build_parser().parse_args(argv)
    return run_command(args.func, args, "mixopt")


if __name__ == "__main__":
    sys.exit(main())
