"""The export task writes every format for the chosen mixture, with the plan's domains."""

from __future__ import annotations

from pathlib import Path

import yaml

from configs.experiment import ExperimentDir, Plan
from configs.schema import load_config
from tasks.export import export_mixture_task

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


def test_export_task_uses_plan_order_targets_and_token_counts(tmp_path) -> None:
    config = load_config(SMOKE)  # target: py_headers, held out; target runs of 16384 tokens
    train = ["py_licenses", "py_metadata", "py_stdlib"]
    plan = Plan(
        tokens_dir=str(tmp_path / "tokens"),
        corpus_fingerprint="f",
        train_domains=train,
        eval_domains=["py_headers", *train],
        tokens={"py_licenses": 4096, "py_metadata": 100_000, "py_stdlib": 100_000},
        tokens_estimated={d: False for d in train},
        production_tokens=config.target_run.train.train_tokens,
        lower=[0.0] * 3,
        upper=[1.0] * 3,
        baselines={},
    )
    chosen = {"mixture": {"py_licenses": 0.5, "py_metadata": 0.5, "py_stdlib": 0.0}}
    paths = export_mixture_task.fn(config, plan, chosen, ExperimentDir(tmp_path))
    assert sorted(paths) == ["hf", "megatron", "olmo", "regmix"]
    assert all(Path(p).parent == tmp_path / "export" for p in paths.values())
    regmix = yaml.safe_load(Path(paths["regmix"]).read_text())
    assert regmix["valid"] == {"valid_py_headers": 1.0}
    olmo = yaml.safe_load(Path(paths["olmo"]).read_text())["sources"]
    assert [s["source_name"] for s in olmo] == ["py_licenses", "py_metadata"]
    assert olmo[0]["max_repetition_ratio"] == 2.0  # 0.5 * 16384 tokens from 4096 available
    bigger = plan.model_copy(update={"production_tokens": 65_536})
    paths = export_mixture_task.fn(config, bigger, chosen, ExperimentDir(tmp_path / "b"))
    olmo = yaml.safe_load(Path(paths["olmo"]).read_text())["sources"]
    assert olmo[0]["max_repetition_ratio"] == 8.0  # 0.5 * 65536 tokens from 4096 available
