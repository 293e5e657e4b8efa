"""A sweep with ``train.pack`` trains its runs in packs through the real flow: one task per pack,
every run's record under its solo run id, results equal to the solo sweep's within float
rounding, and a rerun trains nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs.schema import load_config
from proxies.runs import RunStore, pack_size, write_run_list

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


def test_pack_size_follows_the_config_the_device_and_the_workers():
    from proxies.config import TrainConfig

    assert pack_size(TrainConfig(), runs=30, workers=1, device_type="cpu") == 1
    assert pack_size(TrainConfig(pack=8), runs=30, workers=1, device_type="cpu") == 8
    # never fewer packs than workers: 10 runs on 4 workers are packs of at most 3
    assert pack_size(TrainConfig(pack=8), runs=10, workers=4, device_type="cpu") == 3
    assert pack_size(TrainConfig(pack="auto"), runs=100, workers=1, device_type="cpu") == 4
    assert pack_size(TrainConfig(pack="auto"), runs=100, workers=1, device_type="cuda") == 32
    with pytest.raises(ValueError, match="pack must be >= 1"):
        TrainConfig(pack=0)


@pytest.mark.slow
def test_a_packed_sweep_matches_the_solo_sweep(prefect_api, smoke_corpus_dir, tmp_path):
    from configs.experiment import ExperimentDir
    from flows.prepare_corpus import prepare_corpus
    from flows.proxy_sweep import proxy_sweep
    from tasks.experiment import plan_experiment_task
    from tasks.proxy import sample_sweep_task

    config = load_config(
        SMOKE, overrides=[f"corpus.cache_dir={smoke_corpus_dir}", "sweep.n_runs=3"]
    )
    tokens = prepare_corpus(config)
    plan = plan_experiment_task.fn(config, tokens, ExperimentDir(tmp_path))
    solo_runs = sample_sweep_task.fn(config, plan)
    packed_runs = [
        (label, spec.model_copy(update={"train": spec.train.model_copy(update={"pack": 2})}))
        for label, spec in solo_runs
    ]
    assert [s.run_id for _, s in packed_runs] == [s.run_id for _, s in solo_runs]
    results = {}
    for name, runs in (("solo", solo_runs), ("packed", packed_runs)):
        store = tmp_path / name
        labels = proxy_sweep(
            str(write_run_list(runs, tmp_path / "lists" / name)), tokens, str(store)
        )
        assert set(labels) == {spec.run_id for _, spec in runs}
        results[name] = {r["run_id"]: r for r in RunStore(store).records()}
    solo, packed = results["solo"], results["packed"]
    assert sorted(solo) == sorted(packed) and len(packed) == 5  # 3 sampled + 2 baselines
    # 5 runs in packs of at most 2: 2 + 2 + 1, the single one trained as a solo run
    assert sorted(r.get("pack", {}).get("size", 1) for r in packed.values()) == [1, 2, 2, 2, 2]
    for run_id, rec in packed.items():
        ref = solo[run_id]
        assert rec["result"]["status"] == ref["result"]["status"] == "ok"
        assert rec["label"] == ref["label"] and rec["placement"]["host"]
        for d, v in ref["result"]["val_loss"].items():
            assert rec["result"]["val_loss"][d] == pytest.approx(v, rel=1e-4)
    # a rerun trains nothing: every record is left as it was
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "packed").glob("*.json")}
    proxy_sweep(
        str(write_run_list(packed_runs, tmp_path / "again")), tokens, str(tmp_path / "packed")
    )
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "packed").glob("*.json")}
    assert before == after
