"""Packed training: K proxies stacked in one model give each member its solo run's results (same
initialisation, data, optimizer, clipping and checks), its own record under its solo run id,
and a diverged member leaves the others untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mixtures.errors import DataError
from mixtures.mixture import Mixture
from proxies import pack as pack_module
from proxies.config import ModelShape, TrainConfig
from proxies.model import build_model
from proxies.pack import Member, PackedLlama, make_pack_adamw, pack_loss, train_pack
from proxies.runs import RunSpec, RunStore, execute_pack, execute_run, pack_key, plan_packs
from proxies.train import next_token_loss, train_model

ROOT = Path(__file__).resolve().parents[2]
CFG = TrainConfig(
    model="nano", seq_len=32, batch_size=4, train_tokens=32 * 4 * 12, eval_tokens=256, lr=0.01
)
WEIGHTS = [np.array([0.5, 0.3, 0.2]), np.array([0.1, 0.1, 0.8]), np.full(3, 1 / 3)]
#: A member's losses against its solo run's: the same maths through other kernels (batched
#: matmuls), so equal up to float rounding, which a dozen optimizer steps do not amplify past it.
RTOL = 1e-4


def _solo_and_packed(corpus, cfg, weights=WEIGHTS, **kwargs):
    domains = list(corpus.domains)[:3]
    solo = [
        train_model(corpus, train_domains=domains, weights=w, eval_domains=domains, cfg=cfg, seed=s)
        for s, w in enumerate(weights)
    ]
    packed = train_pack(
        corpus,
        train_domains=domains,
        members=[Member(s, w) for s, w in enumerate(weights)],
        eval_domains=domains,
        cfg=cfg,
        **kwargs,
    )
    return solo, packed


def _assert_same(solo, packed):
    for a, b in zip(solo, packed, strict=True):
        assert a.status == b.status == "ok"
        assert a.steps == b.steps and a.tokens == b.tokens
        assert b.final_train_loss == pytest.approx(a.final_train_loss, rel=RTOL)
        assert b.val_loss.keys() == a.val_loss.keys()
        for d in a.val_loss:
            assert b.val_loss[d] == pytest.approx(a.val_loss[d], rel=RTOL)


def test_members_reproduce_their_solo_runs(tiny_corpus):
    solo, packed = _solo_and_packed(tiny_corpus, CFG)
    _assert_same(solo, packed)
    # the members really differ: distinct mixtures and seeds give distinct losses
    assert len({round(r.val_loss["alpha"], 4) for r in packed}) == 3


@pytest.mark.parametrize(
    "update",
    [
        # grouped-query attention and an untied output layer
        {
            "model": ModelShape(
                d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64, tie_embeddings=False
            )
        },
        # accumulated micro-batches, no clipping
        {"micro_batch_size": 2, "grad_clip": None},
    ],
    ids=["gqa-untied", "micro-batches"],
)
def test_members_reproduce_solo_runs_of_other_shapes_and_options(tiny_corpus, update):
    solo, packed = _solo_and_packed(tiny_corpus, CFG.model_copy(update=update))
    _assert_same(solo, packed)


def test_chunked_pack_loss_equals_the_plain_one(tiny_corpus):
    models = [build_model(CFG.shape, vocab_size=300, seq_len=32, seed=s) for s in range(3)]
    pack = PackedLlama(models)
    batch = torch.randint(0, 300, (3, 4, 33))
    plain = pack_loss(pack, batch, autocast=False)
    chunked = pack_loss(pack, batch, autocast=False, plain_max_elements=1, chunk_elements=900)
    torch.testing.assert_close(chunked, plain, rtol=1e-5, atol=1e-6)
    for k, model in enumerate(models):
        solo = next_token_loss(model, batch[k], autocast=False)
        torch.testing.assert_close(plain[k], solo, rtol=1e-5, atol=1e-6)


def test_a_member_exports_as_its_own_model():
    models = [build_model(CFG.shape, vocab_size=300, seq_len=32, seed=s) for s in range(2)]
    pack = PackedLlama(models)
    member = pack.member(1, seq_len=32)
    for name, param in models[1].named_parameters():
        torch.testing.assert_close(member.get_parameter(name), param, rtol=0, atol=0)


def test_dropping_members_keeps_the_others_state():
    pack = PackedLlama(
        [build_model(CFG.shape, vocab_size=300, seq_len=32, seed=s) for s in range(3)]
    )
    opt = make_pack_adamw(pack, CFG)
    pack_loss(pack, torch.randint(0, 300, (3, 4, 33)), autocast=False).sum().backward()
    opt.step()
    before = {n: p.detach().clone() for n, p in pack.params.items()}
    moments = {n: opt.state[p]["exp_avg"].clone() for n, p in pack.params.items()}
    pack.keep([0, 2], opt)
    assert pack.size == 2
    for n, p in pack.params.items():
        torch.testing.assert_close(p.detach(), before[n][[0, 2]], rtol=0, atol=0)
        torch.testing.assert_close(opt.state[p]["exp_avg"], moments[n][[0, 2]], rtol=0, atol=0)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(pack.params)
    pack_loss(pack, torch.randint(0, 300, (2, 4, 33)), autocast=False).sum().backward()
    opt.step()  # the optimizer steps the kept parameters


def test_a_diverging_member_is_reported_and_the_others_go_on(tiny_corpus, monkeypatch):
    """Member 1 starts from non-finite weights: its loss is NaN at the first check, it is
    reported at once and dropped, and members 0 and 2 still reproduce their solo runs."""
    solo, _ = _solo_and_packed(tiny_corpus, CFG)
    real_initial = pack_module.initial_model
    poisoned_seed = pack_module.run_seeds(1)[0]

    def initial(cfg, *, vocab_size, seed):
        model = real_initial(cfg, vocab_size=vocab_size, seed=seed)
        if seed == poisoned_seed:
            with torch.no_grad():
                model.model.norm.weight.fill_(float("nan"))
        return model

    monkeypatch.setattr(pack_module, "initial_model", initial)
    order = []
    domains = list(tiny_corpus.domains)[:3]
    packed = train_pack(
        tiny_corpus,
        train_domains=domains,
        members=[Member(s, w) for s, w in enumerate(WEIGHTS)],
        eval_domains=domains,
        cfg=CFG,
        log_every=4,
        on_result=lambda i, r: order.append((i, r.status)),
    )
    assert order[0] == (1, "diverged")  # reported before the others finish
    assert sorted(order) == [(0, "ok"), (1, "diverged"), (2, "ok")]
    bad = packed[1]
    assert bad.status == "diverged" and "training loss nan at step 4" in bad.error
    assert bad.steps == 4 and not bad.val_loss
    _assert_same([solo[0], solo[2]], [packed[0], packed[2]])


def _specs(corpus, n=3, cfg=CFG):
    domains = tuple(list(corpus.domains)[:3])
    return [
        RunSpec.for_mixture(
            Mixture(dict(zip(domains, WEIGHTS[i % 3].tolist(), strict=True))),
            kind="proxy",
            corpus=corpus,
            train_domains=domains,
            eval_domains=domains,
            train=cfg,
            seed=i,
        )
        for i in range(n)
    ]


def test_pack_and_compile_are_not_part_of_a_run_id(tiny_corpus):
    (plain,) = _specs(tiny_corpus, 1)
    (packed,) = _specs(tiny_corpus, 1, CFG.model_copy(update={"pack": 8, "compile": True}))
    (bf16,) = _specs(tiny_corpus, 1, CFG.model_copy(update={"precision": "bf16"}))
    assert plain.run_id == packed.run_id  # how runs execute, not what they compute
    assert bf16.run_id != plain.run_id  # a precision other than auto changes the results


def test_execute_pack_writes_solo_records_and_skips_finished_runs(tiny_corpus, tmp_path):
    specs = _specs(tiny_corpus)
    solo_store, pack_store = RunStore(tmp_path / "solo"), RunStore(tmp_path / "pack")
    solo = [execute_run(s, tiny_corpus, solo_store)[0] for s in specs]
    # the first run finished earlier: the pack trains only the other two
    pack_store.write(solo[0])
    seen = []
    out = execute_pack(
        specs,
        tiny_corpus,
        pack_store,
        extras=[{"label": f"r{i}"} for i in range(3)],
        on_record=lambda r: seen.append(r["run_id"]),
    )
    assert [computed for _, computed in out] == [False, True, True]
    assert seen == [specs[1].run_id, specs[2].run_id]
    for spec, (record, _), ref in zip(specs, out, solo, strict=True):
        assert record["run_id"] == spec.run_id == ref["run_id"]
        assert pack_store.load(spec.run_id) == record
        for d, v in ref["result"]["val_loss"].items():
            assert record["result"]["val_loss"][d] == pytest.approx(v, rel=RTOL)
    assert out[1][0]["label"] == "r1" and out[1][0]["pack"] == {"size": 2, "member": 0}
    again = execute_pack(specs, tiny_corpus, pack_store)
    assert [computed for _, computed in again] == [False, False, False]


def test_a_failing_pack_records_each_member_as_failed(tiny_corpus, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("device lost")

    monkeypatch.setattr(pack_module, "train_pack", boom)
    store = RunStore(tmp_path)
    out = execute_pack(_specs(tiny_corpus), tiny_corpus, store)
    assert [r["result"]["status"] for r, _ in out] == ["failed"] * 3
    assert all("RuntimeError: device lost" in r["result"]["error"] for r, _ in out)
    assert all(store.finished(r["run_id"]) is None for r, _ in out)  # retried on rerun


def test_runs_of_different_configs_never_share_a_pack(tiny_corpus):
    a = _specs(tiny_corpus, 5)
    b = _specs(tiny_corpus, 2, CFG.model_copy(update={"lr": 0.02}))
    specs = [a[0], b[0], a[1], a[2], b[1], a[3], a[4]]
    packs = plan_packs(specs, 3)
    assert sorted(i for p in packs for i in p) == list(range(7))
    for p in packs:
        assert len({pack_key(specs[i]) for i in p}) == 1
    # 5 runs of one config in packs of at most 3: 3 + 2, not 3 + 1 + 1
    assert sorted(len(p) for p in packs) == [2, 2, 3]
    with pytest.raises(DataError, match="differ in more than their mixture and seed"):
        execute_pack([a[0], b[0]], tiny_corpus, RunStore(Path("/nonexistent-never-written")))


_KILL_SCRIPT = """
import sys
from proxies.runs import RunSpec, RunStore, execute_pack
from proxies.tokens import TokenCorpus
import json
specs = [RunSpec.model_validate(s) for s in json.load(open(sys.argv[1]))]
execute_pack(specs, TokenCorpus.load(sys.argv[2]), RunStore(sys.argv[3]),
             log=lambda m: print(m, flush=True))
"""


@pytest.mark.slow
def test_a_pack_killed_mid_way_retrains_only_its_unfinished_members(
    tiny_corpus, tmp_path, monkeypatch
):
    cfg = CFG.model_copy(update={"train_tokens": 32 * 4 * 4000})  # minutes: killed long before
    specs = _specs(tiny_corpus, 3, cfg)
    store = RunStore(tmp_path / "store")
    finished = {
        "run_id": specs[0].run_id,
        "spec": specs[0].model_dump(mode="json"),
        "result": {"status": "ok", "val_loss": {}},
    }
    store.write(finished)
    before = store.path(specs[0].run_id).stat().st_mtime_ns
    spec_file = tmp_path / "specs.json"
    spec_file.write_text(json.dumps([s.model_dump(mode="json") for s in specs]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KILL_SCRIPT,
            str(spec_file),
            str(tiny_corpus.path),
            str(store.root),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the first progress line: the pack is training
    assert "step 50/" in line and "(2 members)" in line
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.1)
    # The killed pack's members keep their leases (nothing released them), which name the
    # dead process; no record or temporary file was written for them.
    leases = sorted(p.name for p in store.root.iterdir() if p.suffix == ".lease")
    assert leases == sorted(f"{s.run_id}.lease" for s in specs[1:])
    assert all(store.lease_holder(s.run_id) is None for s in specs[1:])  # stale: pid is dead
    assert sorted(p.name for p in store.root.iterdir() if p.suffix != ".lease") == [
        f"{specs[0].run_id}.json"
    ]
    assert store.path(specs[0].run_id).stat().st_mtime_ns == before  # untouched, no temp files
    # The rerun trains exactly the unfinished members (the trainer is replaced by one that
    # records what it was given: the real one would take minutes at this budget).
    from proxies.train import TrainResult

    given = []

    def fake_train_pack(corpus, *, members, on_result, **kwargs):
        given.extend(m.seed for m in members)
        for pos in range(len(members)):
            on_result(pos, TrainResult(status="ok", val_loss={"alpha": 1.0}))

    monkeypatch.setattr(pack_module, "train_pack", fake_train_pack)
    out = execute_pack(specs, tiny_corpus, store)
    assert given == [1, 2]  # the stale leases were broken and the members trained
    assert [computed for _, computed in out] == [False, True, True]
    assert store.path(specs[0].run_id).stat().st_mtime_ns == before
    assert not list(store.root.glob("*.lease*"))  # released once their records were written
