"""Custom evaluators: a target other than validation loss (``target.kind: custom``).

An evaluator is any importable function, named ``"package.module:function"``, called once per
finished run after the per-domain validation losses, in the training process, with the trained
model still in memory:

    fn(model, corpus, *, domains, cfg, device, **params) -> float

- ``model``: the trained ``transformers`` causal LM (``model(input_ids).logits``), in eval mode;
- ``corpus``: the ``TokenCorpus`` (``corpus.array(domain, "val")``, ``corpus.vocab_size``);
- ``domains``: the target's domains (``target.domain``) or, without one, every evaluated domain;
- ``cfg``: the run's ``TrainConfig`` (``seq_len``, ``eval_tokens``, ``eval_layout``, ...);
- ``device``: the ``torch.device`` the model is on;
- ``params``: ``target.evaluator_params`` from the config (JSON values).

It returns one finite number, **lower is better**; for a score that grows return
``1 - accuracy`` or another positive value (the ``loglinear`` surrogate needs positive targets,
and the others fit log targets when every value is positive). The evaluator's reference and its
params are part of the run's identity: changing either makes new runs, and runs made with
another evaluator are never mixed in. Its code is not: after changing what a function computes,
change its name or add a param (e.g. ``version: 2``), or finished runs keep their old values.

"Importable" means from where the runs execute: an installed package, or a module on
``PYTHONPATH`` (``PYTHONPATH=. mixopt optimize ...`` for ``./my_evals.py``; the ``mixopt``
command does not put the working directory on the path). On Dask or Ray workers it must be
importable there too.

``next_token_error`` is a built-in one: top-1 next-token error rate on the validation windows
the loss is computed on.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mixtures.errors import ConfigError, RunError

Evaluator = Callable[..., float]


def load_evaluator(ref: str) -> Evaluator:
    """The function ``ref`` names (``"package.module:function"``); ConfigError if it cannot be
    imported or is not callable."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"evaluator {ref!r}: expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # an import error of the user's module, whatever its kind
        hint = ""
        if isinstance(err, ModuleNotFoundError) and err.name == module_name.split(".")[0]:
            hint = " (a module of your own must be on PYTHONPATH, e.g. PYTHONPATH=.)"
        raise ConfigError(
            f"evaluator {ref!r}: cannot import {module_name!r}: {type(err).__name__}: {err}{hint}"
        ) from err
    # A dotted attribute path of a user's module: what it names is known only at run time
    # (checked by callable() here and by run_evaluator's check of the value it returns).
    fn: Any = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise ConfigError(f"evaluator {ref!r}: module {module_name!r} has no {attr!r}")
    if not callable(fn):
        raise ConfigError(f"evaluator {ref!r} is not callable")
    return fn


def check_evaluator(ref: str, params: Mapping[str, Any]) -> None:
    """Fail before any training if ``ref`` cannot be imported or called as an evaluator with
    ``params`` (ConfigError naming the problem)."""
    fn = load_evaluator(ref)
    try:
        signature = inspect.signature(fn)
    except ValueError:  # no signature to inspect (a builtin): trust it
        return
    try:
        signature.bind(None, None, domains=(), cfg=None, device=None, **params)
    except TypeError as err:
        raise ConfigError(
            f"evaluator {ref!r} must accept (model, corpus, *, domains, cfg, device) and its "
            f"evaluator_params {sorted(params)}: {err}"
        ) from err


def run_evaluator(
    ref: str, params: Mapping[str, Any], model: Any, corpus: Any, **context: Any
) -> float:
    """Call the evaluator and check what it returns: one finite number (RunError otherwise; the
    caller names the evaluator)."""
    value = load_evaluator(ref)(model, corpus, **context, **params)
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise RunError(f"returned {value!r}, expected a number") from err
    if not math.isfinite(number):
        raise RunError(f"returned {number}, expected a finite number")
    return number


def next_token_error(
    model: Any, corpus: Any, *, domains: Sequence[str], cfg: Any, device: Any
) -> float:
    """1 - top-1 next-token accuracy, over ``domains``' validation windows (those the loss uses),
    every token position counted once."""
    import torch

    from proxies.batches import eval_batches

    wrong, total = 0, 0
    with torch.no_grad():
        for domain in domains:
            for batch in eval_batches(corpus.array(domain, "val"), cfg):
                batch = batch.to(device)
                logits = model(input_ids=batch[:, :-1], use_cache=False).logits
                hit = logits.argmax(dim=-1) == batch[:, 1:]
                wrong += int((~hit).sum())
                total += hit.numel()
    if total == 0:
        raise RunError(f"next_token_error: no validation tokens in {list(domains)}")
    return wrong / total
