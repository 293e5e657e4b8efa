"""The one typed root config of an experiment, loaded from YAML (pydantic v2, strict, frozen)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from configs.corpus import NAME as _NAME
from configs.corpus import CorpusConfig
from configs.corpus import Strict as _Strict
from mixtures.errors import ConfigError
from mixtures.names import DEFAULT_BO_SURROGATE, BOSurrogateName, SurrogateName
from mixtures.sampling import SamplerConfig
from proxies.config import EvaluatorRef, PresetName, TrainConfig
from proxies.evaluators import check_evaluator

BaselineName = Literal["uniform", "natural"]
#: A device the thread runner can lease: a numbered CUDA device or the CPU.
_DEVICE = re.compile(r"cpu|cuda:\d+")


def _default_baselines() -> list[BaselineName]:
    return ["uniform", "natural"]


def _default_compared() -> list[SurrogateName]:
    return ["ridge", "lightgbm", "gp", "ensemble"]


class TargetConfig(_Strict):
    """What "good" means: the loss to minimise over held-out validation tokens, or the value of
    a custom evaluator (``proxies.evaluators``); lower is better either way."""

    kind: Literal["domain", "weighted", "average", "custom"] = Field(
        "domain",
        description="loss on one domain, a weighted average of domains, the mean, or a custom "
        "evaluator's value",
    )
    domain: str | None = Field(
        None,
        description="kind=domain: the target domain; kind=custom: optional, the domain the "
        "evaluator is given (held out with holdout)",
    )
    weights: dict[str, float] = Field(
        default_factory=dict, description="kind=weighted: domain -> weight (normalized)"
    )
    evaluator: str | None = Field(
        None,
        description="kind=custom: 'package.module:function' called on each trained model, "
        "returning one number, lower is better (proxies/evaluators.py)",
    )
    evaluator_params: dict[str, Any] = Field(
        default_factory=dict, description="kind=custom: keyword arguments of the evaluator"
    )
    holdout: bool = Field(
        True,
        description="keep the target domain(s) out of training mixtures, so the optimizer "
        "must find which training domains transfer to the target",
    )

    @model_validator(mode="after")
    def _check(self) -> TargetConfig:
        if self.kind == "domain" and not self.domain:
            raise ValueError("kind 'domain' needs `domain`")
        if self.kind == "weighted" and not self.weights:
            raise ValueError("kind 'weighted' needs `weights`")
        if self.kind != "weighted" and self.weights:
            raise ValueError(f"`weights` is used with kind 'weighted' only, not {self.kind!r}")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError(f"weights must be >= 0, got {self.weights}")
        if self.kind == "average" and self.holdout:
            raise ValueError("kind 'average' targets every domain; set holdout: false")
        if self.kind == "custom":
            if not self.evaluator:
                raise ValueError("kind 'custom' needs `evaluator` ('package.module:function')")
            if self.holdout and not self.domain:
                raise ValueError(
                    "kind 'custom' without `domain` holds nothing out; name the domain the "
                    "evaluator is given, or set holdout: false"
                )
            check_evaluator(self.evaluator, self.evaluator_params)
        elif self.evaluator is not None or self.evaluator_params:
            raise ValueError(
                f"`evaluator` and `evaluator_params` are used with kind 'custom' only, "
                f"not {self.kind!r}"
            )
        return self

    def target_domains(self, all_domains: list[str]) -> list[str]:
        if self.kind in ("domain", "custom"):
            return [self.domain] if self.domain else []
        if self.kind == "weighted":
            return sorted(self.weights)
        return sorted(all_domains)

    def evaluator_ref(self) -> EvaluatorRef | None:
        """What a run spec records of the custom evaluator (None for the loss targets)."""
        if self.kind != "custom" or self.evaluator is None:
            return None
        return EvaluatorRef(
            function=self.evaluator,
            params=self.evaluator_params,
            domains=(self.domain,) if self.domain else (),
        )


class SweepConfig(_Strict):
    """The proxy sweep: how many mixtures, sampled how, under which constraints."""

    n_runs: int = Field(32, ge=2, description="proxy runs in the initial sweep")
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    include_baselines: bool = Field(
        True, description="also run the uniform and natural (token-proportional) mixtures"
    )
    min_weight: dict[str, float] = Field(default_factory=dict, description="domain -> min weight")
    max_weight: dict[str, float] = Field(default_factory=dict, description="domain -> max weight")
    max_epochs: float | None = Field(
        None,
        gt=0,
        description="cap: no domain repeated more than this many times in a run of "
        "production_tokens, counted against the domain's whole source; null = no cap",
    )
    production_tokens: int | None = Field(
        None,
        gt=0,
        description="token budget of the run the mixture is for, against which repetition is "
        "bounded (max_epochs) and exported; null = the target run's train_tokens",
    )


class MergeConfig(_Strict):
    """Model merging as a proxy (``proxies.merge``): a shared trunk, one expert per training
    domain, and merged models evaluated for candidate mixtures without training."""

    trunk_fraction: float = Field(
        0.75,
        ge=0,
        lt=1,
        description="share of the proxy's steps trained as the shared trunk before branching "
        "into one expert per domain; the experts cost trunk + domains x (1 - trunk) proxy runs",
    )
    trunk_mixture: Literal["uniform", "natural"] = Field(
        "uniform", description="the mixture the shared trunk trains on"
    )
    candidates: int = Field(
        128,
        ge=2,
        description="mixtures drawn from the sweep's prior whose merged models are evaluated "
        "(the sweep's trained mixtures are evaluated too, to measure the agreement)",
    )


class SearchConfig(_Strict):
    """How the mixture is chosen from the sweep."""

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        # filled in only where used, so a dumped regmix config (None) validates again unchanged
        if not isinstance(data, dict):
            return data
        if data.get("method") == "bo" and data.get("bo_surrogate") is None:
            data = {**data, "bo_surrogate": DEFAULT_BO_SURROGATE}
        if data.get("method") == "merge" and data.get("merge") is None:
            data = {**data, "merge": {}}
        return data

    method: Literal["regmix", "bo", "merge"] = Field(
        "regmix",
        description="regmix: fit, simulate, average the top-k; bo: Bayesian rounds; merge: "
        "the RegMix choice on merged experts' estimates (search.merge) instead of trained runs",
    )
    surrogate: SurrogateName | Literal["auto"] = Field(
        "auto",
        description="surrogate that drives the choice; auto = the one of `compare` with "
        "the best cross-validated Spearman on this experiment's runs (ties: first listed)",
    )
    compare: list[SurrogateName] = Field(
        default_factory=_default_compared,
        min_length=1,
        description="surrogates whose cross-validated quality is reported",
    )
    cv_folds: int = Field(5, ge=2, description="folds of the leak-free cross-validation")
    n_candidates: int = Field(20_000, ge=100, description="simulated mixtures (regmix)")
    top_k: int = Field(100, ge=1, description="top predicted candidates averaged (regmix)")
    bo_rounds: int = Field(2, ge=0, description="bo: rounds after the initial sweep")
    bo_batch: int = Field(4, ge=1, description="bo: proxies trained per round")
    bo_surrogate: BOSurrogateName | None = Field(
        None,
        description="bo: the GP (or the ensemble of GPs, gp_average) that proposes the rounds' "
        f"mixtures and chooses the final one; null = {DEFAULT_BO_SURROGATE} with method bo "
        "(filled in, so the saved config names it), nothing with regmix",
    )
    bo_proxy: TrainConfig | None = Field(
        None,
        description="bo: train the rounds' proxies with this config (a larger model or more "
        "tokens than `proxy`); the sweep's runs then become a low-fidelity prior of the GP and "
        "the choice comes from the rounds' runs. null = the rounds train `proxy` like the sweep",
    )
    merge: MergeConfig | None = Field(
        None,
        description="merged experts (MergeConfig): with method merge, the estimates the choice "
        "is made from; with method bo, the GP's low-fidelity prior, so the rounds train where "
        "merging points. null = no merging (filled in with defaults for method merge)",
    )


class TargetRunConfig(_Strict):
    """The larger run: chosen mixture vs baselines, several seeds. This is the evidence."""

    enabled: bool = True
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(model="small", train_tokens=1_000_000)
    )
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    baselines: list[BaselineName] = Field(default_factory=_default_baselines)
    deployment: str | None = Field(
        None,
        description="target_run deployment that receives the chosen mixture when it "
        "exists (see `mixopt serve`); null = the experiment name. Without one it runs inline",
    )


class RunnerConfig(_Strict):
    """Where proxy tasks run: chosen here, not in code."""

    kind: Literal["thread", "dask", "ray"] = Field(
        "thread", description="thread: local pool; dask/ray: a cluster (see README)"
    )
    max_workers: int = Field(
        1, ge=1, description="parallel proxy runs; on CPU torch already uses every core per run"
    )
    address: str | None = Field(None, description="dask scheduler / ray address; null = local")
    torch_threads: int | None = Field(None, ge=1, description="torch threads per run; null = all")
    devices: list[str] | None = Field(
        None,
        description="thread: the devices ('cuda:N' or 'cpu') leased to concurrent runs, each run "
        "taking the least busy one (in turn on ties); null = every CUDA device torch sees, none "
        "without CUDA (runs then train on their train.device)",
    )
    gpus: float | None = Field(
        None,
        ge=0,
        description="dask/ray without address: the whole number of GPUs the local cluster or "
        "instance offers; null = the CUDA devices torch sees (counted when the runner is made)",
    )
    gpus_per_task: float | None = Field(
        None,
        gt=0,
        description="dask/ray: GPUs each training task requests; a fraction lets several runs "
        "share one GPU; null = 1 where the cluster offers GPUs (a local dask worker's share "
        "when it has less), 0 where it offers none",
    )

    @model_validator(mode="after")
    def _check(self) -> RunnerConfig:
        if self.devices is not None:
            if self.kind != "thread":
                raise ValueError(f"runner.devices is for kind 'thread', not {self.kind!r}")
            bad = [d for d in self.devices if not _DEVICE.fullmatch(d)]
            if bad:
                raise ValueError(f"runner.devices must be 'cuda:N' or 'cpu', got {bad}")
            if len(set(self.devices)) != len(self.devices):
                raise ValueError(f"runner.devices names a device twice: {self.devices}")
        if self.kind == "thread" and (self.gpus is not None or self.gpus_per_task is not None):
            raise ValueError(
                "runner.gpus and runner.gpus_per_task are for kind dask or ray; "
                "the thread runner leases runner.devices"
            )
        if self.gpus is not None:
            if self.address is not None:
                raise ValueError(
                    f"runner.gpus sizes a local cluster; the one at {self.address!r} offers its "
                    "own GPUs"
                )
            if not float(self.gpus).is_integer():
                raise ValueError(f"runner.gpus must be a whole number of GPUs, got {self.gpus}")
        n = self.gpus_per_task
        if n is not None and n > 1 and not float(n).is_integer():
            raise ValueError(
                f"runner.gpus_per_task above 1 must be a whole number of GPUs, got {n}"
            )
        if n is not None and self.gpus is not None and n > self.gpus:
            raise ValueError(
                f"runner.gpus_per_task {n:g} is more than runner.gpus {self.gpus:g}: no task "
                "could start"
            )
        return self


class ExperimentConfig(_Strict):
    """Root config of one experiment. Saved, resolved, beside its results."""

    name: str = Field(description="experiment name; results go to runs/<name>/ by default")
    seed: int = Field(0, ge=0, description="the one seed: sampling, proxies, target runs")
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    target: TargetConfig
    proxy: TrainConfig = Field(default_factory=TrainConfig)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    target_run: TargetRunConfig = Field(default_factory=TargetRunConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        if not _NAME.fullmatch(self.name.replace("-", "_")):
            raise ValueError(f"name {self.name!r} must match [a-z0-9_-]+")
        s = self.search
        if s.bo_surrogate is not None and s.method != "bo":
            raise ValueError(f"search.bo_surrogate needs search.method 'bo', got {s.method!r}")
        if s.bo_proxy is not None and s.bo_surrogate == "gp_average":
            raise ValueError(
                "search.bo_proxy needs a single GP as search.bo_surrogate (the sweep's prior is "
                "one more input of that GP), got 'gp_average'"
            )
        if s.merge is not None:
            if s.method == "regmix":
                raise ValueError(
                    "search.merge is used by search.method 'merge' or 'bo', not 'regmix'"
                )
            if s.bo_proxy is not None:
                raise ValueError(
                    "search.merge and search.bo_proxy are two low-fidelity priors of BO; choose one"
                )
            if self.target.kind == "custom":
                raise ValueError(
                    "search.merge estimates validation losses; a custom evaluator's target "
                    "needs trained models (use target.kind domain, weighted or average)"
                )
        if s.bo_proxy is not None:
            if s.method != "bo":
                raise ValueError(f"search.bo_proxy needs search.method 'bo', got {s.method!r}")
            if (
                s.bo_proxy.model_dump(exclude={"model"}) == self.proxy.model_dump(exclude={"model"})
                and s.bo_proxy.shape == self.proxy.shape
            ):
                raise ValueError("search.bo_proxy is the same as proxy: nothing to transfer")
            if s.bo_rounds * s.bo_batch < 2:
                raise ValueError(
                    "search.bo_proxy needs at least 2 runs at its scale to choose from "
                    f"(bo_rounds * bo_batch = {s.bo_rounds * s.bo_batch})"
                )
        return self


def _format_errors(err: ValidationError, origin: str) -> str:
    lines = [f"invalid config {origin}: {err.error_count()} problem(s)"]
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(root)"
        got = e.get("input")
        shown = repr(got) if not isinstance(got, dict) else "{...}"
        lines.append(f"  - {path}: {e['msg']} (got {shown[:80]})")
    return "\n".join(lines)


def _apply_override(data: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise ConfigError(f"--set expects section.key=value, got {item!r}")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {item!r}: the key has an empty part (expected section.key)")
    node = data
    for p in parts[:-1]:
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {p!r} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.load(raw, Loader=_StrictLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: the value is not valid YAML: {err}") from None


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (plain YAML
    keeps the last one without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_config(data: dict[str, Any], *, origin: str = "<dict>") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, origin)) from None


def load_config(path: str | Path, *, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a YAML config, apply ``section.key=value`` overrides, validate everything at once."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; name a YAML file")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    for item in overrides or []:
        _apply_override(data, item)
    return parse_config(data, origin=str(path))


__all__ = [
    "CorpusConfig",
    "ExperimentConfig",
    "MergeConfig",
    "PresetName",
    "RunnerConfig",
    "SearchConfig",
    "SweepConfig",
    "TargetConfig",
    "TargetRunConfig",
    "load_config",
    "parse_config",
]
