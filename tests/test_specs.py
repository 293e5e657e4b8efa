"""The experiment plan: true token counts, the production budget and the repetition bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs.schema import load_config
from configs.specs import make_plan

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"


def _config(*overrides: str):
    return load_config(SMOKE, overrides=["target.domain=delta", *overrides])


def test_plan_uses_source_counts_and_the_production_budget(tiny_corpus):
    source = tiny_corpus.tokens("source")
    plan = make_plan(_config("sweep.max_epochs=2"), tiny_corpus)
    assert plan.train_domains == ["alpha", "beta", "gamma"]
    assert plan.tokens == {d: source[d] for d in plan.train_domains}
    assert plan.tokens["alpha"] > tiny_corpus.tokens("train")["alpha"]  # train + val
    target_budget = plan.production_tokens
    assert target_budget == _config().target_run.train.train_tokens
    budget = sum(source[d] for d in plan.train_domains)  # each domain's cap: 2x its share
    big = make_plan(_config("sweep.max_epochs=2", f"sweep.production_tokens={budget}"), tiny_corpus)
    assert big.production_tokens == budget
    # a domain's share may reach only what max_epochs repetitions of its whole source allow
    for d, hi in zip(big.train_domains, big.upper, strict=True):
        assert hi == pytest.approx(min(1.0, source[d] * 2 / budget))
    assert max(big.upper) < 1.0 and min(plan.upper) == 1.0
    shares = plan.prior()
    total = sum(plan.tokens.values())
    assert shares.tolist() == pytest.approx([plan.tokens[d] / total for d in plan.train_domains])
    assert plan.baselines["natural"] == pytest.approx(
        dict(zip(plan.train_domains, shares, strict=True))
    )
