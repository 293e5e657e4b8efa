"""Custom evaluators (target.kind: custom): loading, checking, running, and run identity."""

from __future__ import annotations

import sys
import types

import pytest

from configs.schema import TargetConfig
from mixtures.errors import ConfigError
from mixtures.mixture import Mixture
from proxies.config import EvaluatorRef, TrainConfig
from proxies.evaluators import check_evaluator, load_evaluator
from proxies.records import records_to_tables, target_fn
from proxies.runs import RunSpec, RunStore, execute_run

CFG = TrainConfig(
    model="nano", seq_len=16, batch_size=8, train_tokens=4096, eval_tokens=512, lr=1e-2
)
TRAIN = ["alpha", "beta", "gamma"]
ERROR = "proxies.evaluators:next_token_error"


@pytest.fixture
def user_module(monkeypatch):
    """A user's evaluator module, importable as ``my_evals``."""
    mod = types.ModuleType("my_evals")

    def constant(model, corpus, *, domains, cfg, device, value=0.25):
        return value

    def broken(model, corpus, *, domains, cfg, device):
        raise RuntimeError("the eval set is missing")

    def not_a_number(model, corpus, *, domains, cfg, device):
        return float("nan")

    def no_kwargs(model):
        return 0.0

    def needs_a_param(model, corpus, *, domains, cfg, device, threshold):
        return threshold

    for fn in (constant, broken, not_a_number, no_kwargs, needs_a_param):
        setattr(mod, fn.__name__, fn)
    monkeypatch.setitem(sys.modules, "my_evals", mod)
    return mod


def spec(corpus, evaluator=None, weights=(0.4, 0.3, 0.3), train=CFG):
    return RunSpec.for_mixture(
        Mixture.from_array(TRAIN, list(weights)),
        kind="proxy",
        corpus=corpus,
        train_domains=TRAIN,
        eval_domains=list(corpus.domains),
        train=train,
        seed=0,
        evaluator=evaluator,
    )


def test_load_and_check_name_the_problem(user_module):
    assert load_evaluator("my_evals:constant") is user_module.constant
    with pytest.raises(ConfigError, match="expected 'package.module:function'"):
        load_evaluator("my_evals.constant")
    with pytest.raises(ConfigError, match="cannot import 'no_such_module'"):
        load_evaluator("no_such_module:f")
    with pytest.raises(ConfigError, match="has no 'nope'"):
        load_evaluator("my_evals:nope")
    with pytest.raises(ConfigError, match="must accept"):
        check_evaluator("my_evals:no_kwargs", {})
    check_evaluator("my_evals:constant", {"value": 0.5})
    check_evaluator("my_evals:needs_a_param", {"threshold": 0.5})
    with pytest.raises(ConfigError, match=r"evaluator_params \[\]: missing a required"):
        check_evaluator("my_evals:needs_a_param", {})
    with pytest.raises(ConfigError, match=r"evaluator_params \['colour'\]"):
        check_evaluator("my_evals:constant", {"colour": "red"})


def test_target_config_checks_the_evaluator_before_any_run(user_module):
    ok = TargetConfig(kind="custom", evaluator="my_evals:constant", domain="delta")
    assert ok.target_domains(["alpha", "delta"]) == ["delta"]
    assert ok.evaluator_ref() == EvaluatorRef(function="my_evals:constant", domains=("delta",))
    assert TargetConfig(kind="custom", evaluator=ERROR, holdout=False).target_domains(["a"]) == []
    assert TargetConfig(kind="domain", domain="delta").evaluator_ref() is None
    for kwargs, message in [
        ({"kind": "custom"}, "needs `evaluator`"),
        ({"kind": "custom", "evaluator": ERROR}, "holds nothing out"),
        ({"kind": "custom", "evaluator": "no_such_module:f", "domain": "d"}, "PYTHONPATH"),
        ({"kind": "domain", "domain": "d", "evaluator": ERROR}, "kind 'custom' only"),
        (
            {
                "kind": "custom",
                "evaluator": "my_evals:constant",
                "evaluator_params": {"x": 1},
                "holdout": False,
            },
            "evaluator_params \\['x'\\]",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            TargetConfig(**kwargs)


def test_run_ids_with_an_evaluator_differ(tiny_corpus):
    # without one the id is unchanged: tests/proxies/test_runs.py pins a literal spec's id
    plain = spec(tiny_corpus)
    with_error = spec(tiny_corpus, EvaluatorRef(function=ERROR))
    on_delta = spec(tiny_corpus, EvaluatorRef(function=ERROR, domains=("delta",)))
    assert len({plain.run_id, with_error.run_id, on_delta.run_id}) == 3
    assert RunSpec.model_validate_json(on_delta.model_dump_json()).run_id == on_delta.run_id


def test_next_token_error_is_recorded_and_falls_with_training(tiny_corpus, tmp_path):
    store = RunStore(tmp_path)
    ref = EvaluatorRef(function=ERROR, domains=("beta",))
    short = CFG.model_copy(update={"train_tokens": 128})  # one step: close to chance
    records = []
    for train in (short, CFG):
        rec, computed = execute_run(spec(tiny_corpus, ref, train=train), tiny_corpus, store)
        assert computed and rec["result"]["status"] == "ok", rec["result"]["error"]
        records.append(rec)
    errors = [r["result"]["evals"][ERROR] for r in records]
    assert all(0.0 < e < 1.0 for e in errors)
    # beta's documents are the numbers 0-39 drawn at random: 8x4096 tokens learn most of that
    assert errors[1] < errors[0] - 0.1, errors
    # the target is the evaluator's value, not a loss
    fn = target_fn("custom", domain="beta", weights={}, eval_domains=[], evaluator=ERROR)
    table, _ = records_to_tables(records, train_domains=TRAIN, target=fn)
    by_id = {r["run_id"]: e for r, e in zip(records, errors, strict=True)}
    assert table.target("target").tolist() == pytest.approx([by_id[i] for i in table.run_ids])
    assert table.target("target").tolist() != pytest.approx(table.target("val_loss/beta").tolist())


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("my_evals:broken", "RuntimeError: the eval set is missing"),
        ("my_evals:not_a_number", "returned nan, expected a finite number"),
    ],
)
def test_a_failing_evaluator_fails_the_run_and_keeps_its_losses(
    tiny_corpus, tmp_path, user_module, name, message
):
    rec, _ = execute_run(
        spec(tiny_corpus, EvaluatorRef(function=name)), tiny_corpus, RunStore(tmp_path)
    )
    res = rec["result"]
    assert res["status"] == "failed"
    assert name in res["error"] and message in res["error"]
    assert set(res["val_loss"]) == set(tiny_corpus.domains)  # the losses are kept
    assert res["evals"] == {}


def test_evaluator_params_reach_the_function(tiny_corpus, tmp_path, user_module):
    ref = EvaluatorRef(function="my_evals:constant", params={"value": 0.75})
    rec, _ = execute_run(spec(tiny_corpus, ref), tiny_corpus, RunStore(tmp_path))
    assert rec["result"]["evals"] == {"my_evals:constant": 0.75}
