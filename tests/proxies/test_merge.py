"""Linear model merging: a one-hot mixture gives back its expert, merging is linear in the
weights, experts branch from one trunk, and bad merge weights are named errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mixtures.errors import DataError
from proxies.config import TrainConfig
from proxies.merge import (
    MergeSpec,
    MergeStore,
    experts_fingerprint,
    load_experts,
    merge_members,
    merged_losses,
    merged_table,
    train_branches,
    train_experts,
)
from proxies.model import build_model
from proxies.pack import PackedLlama, pack_loss

CFG = TrainConfig(
    model="nano", seq_len=32, batch_size=4, train_tokens=32 * 4 * 8, eval_tokens=256, lr=0.01
)


def _pack(k=3):
    return PackedLlama(
        [build_model(CFG.shape, vocab_size=300, seq_len=32, seed=s) for s in range(k)]
    )


def test_a_one_hot_mixture_is_its_expert_and_merging_is_linear():
    pack = _pack()
    merged = merge_members(pack, np.array([[0, 1, 0], [0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]))
    assert merged.size == 3 and pack.size == 3
    for name in pack.names:
        p = pack.p(name)
        torch.testing.assert_close(merged.p(name)[0], p[1], rtol=0, atol=0)
        torch.testing.assert_close(merged.p(name)[1], 0.5 * p[0] + 0.25 * p[1] + 0.25 * p[2])
    a, b = np.array([1.0, 0, 0]), np.array([0, 0.5, 0.5])
    blend = merge_members(pack, np.array([0.3 * a + 0.7 * b]))
    parts = merge_members(pack, np.array([a, b]))
    for name in pack.names:
        torch.testing.assert_close(
            blend.p(name)[0], 0.3 * parts.p(name)[0] + 0.7 * parts.p(name)[1], rtol=1e-6, atol=1e-7
        )
    # the merged model of a one-hot mixture computes its expert's loss
    batch = torch.randint(0, 300, (3, 2, 33))
    expert = pack_loss(pack, batch, autocast=False)[1]
    one_hot = pack_loss(merged, batch[1:2].expand(3, -1, -1), autocast=False)[0]
    torch.testing.assert_close(one_hot, expert)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.ones((2, 2)) / 2, r"must be \(mixtures, 3 experts\)"),
        (np.array([[0.5, 0.6, -0.1]]), "must be >= 0 and sum to 1"),
        (np.array([[0.5, 0.4, 0.0]]), "must be >= 0 and sum to 1"),
    ],
)
def test_bad_merge_weights_are_named(weights, message):
    with pytest.raises(DataError, match=message):
        merge_members(_pack(), weights)


def test_experts_branch_from_one_trunk_and_merge_into_losses(tiny_corpus):
    domains = list(tiny_corpus.domains)[:3]
    experts = train_experts(
        tiny_corpus,
        train_domains=domains,
        cfg=CFG,
        seed=0,
        trunk_fraction=0.5,
        trunk_weights=np.full(3, 1 / 3),
    )
    assert experts.domains == tuple(domains) and experts.pack.size == 3
    assert experts.cost_runs == pytest.approx((4 + 3 * 4) / 8)  # trunk 4 steps, 3 x 4 branch
    # the experts started from one trunk but trained on different domains: they differ
    emb = experts.pack.p("model.embed_tokens.weight")
    assert not torch.equal(emb[0], emb[1])
    losses = merged_losses(experts, tiny_corpus, np.eye(3), eval_domains=domains, cfg=CFG)
    # each expert is best, among the three, on its own domain
    for j, d in enumerate(domains):
        assert min(range(3), key=lambda m: losses[m][d]) == j
    with pytest.raises(DataError, match="trunk_fraction"):
        train_experts(
            tiny_corpus,
            train_domains=domains,
            cfg=CFG,
            seed=0,
            trunk_fraction=1.0,
            trunk_weights=np.full(3, 1 / 3),
        )


def _spec(corpus, domains, fraction=0.5):
    return MergeSpec(
        corpus=experts_fingerprint(corpus, domains),
        domains=tuple(domains),
        trunk_weights=tuple([1 / len(domains)] * len(domains)),
        trunk_fraction=fraction,
        train=CFG,
        seed=0,
    )


def test_branches_on_disk_equal_in_memory_experts_and_resume_per_expert(tiny_corpus, tmp_path):
    domains = list(tiny_corpus.domains)[:3]
    spec = _spec(tiny_corpus, domains)
    store = MergeStore(tmp_path / "merge")
    out = train_branches(tiny_corpus, spec, store)
    assert [(r["stage"], r["domain"], now) for r, now in out] == [
        ("trunk", None, True),
        *[("expert", d, True) for d in domains],
    ]
    assert len({r["run_id"] for r, _ in out}) == 4
    memory = train_experts(
        tiny_corpus,
        train_domains=domains,
        cfg=CFG,
        seed=0,
        trunk_fraction=0.5,
        trunk_weights=np.full(3, 1 / 3),
    )
    disk = load_experts(tiny_corpus, spec, store)
    assert disk.cost_runs == memory.cost_runs == spec.cost_runs
    for name in memory.pack.names:
        torch.testing.assert_close(disk.pack.p(name), memory.pack.p(name), rtol=1e-5, atol=1e-6)

    # a lost expert (its record gone) is the only stage trained again, from the saved trunk
    lost = spec.expert_id(domains[1])
    before = store.load(lost)["params"]
    trunk_file = store.records.path(spec.trunk_id).read_bytes()
    store.records.path(lost).unlink()
    again = train_branches(tiny_corpus, spec, store)
    assert sorted((r["run_id"], now) for r, now in again) == sorted(
        [(spec.trunk_id, False), (lost, True)]
        + [(spec.expert_id(d), False) for d in (domains[0], domains[2])]
    )
    assert store.records.path(spec.trunk_id).read_bytes() == trunk_file
    for name, value in store.load(lost)["params"].items():
        torch.testing.assert_close(value, before[name], rtol=1e-5, atol=1e-6)
    # nothing left to train: nothing trains
    assert not any(now for _, now in train_branches(tiny_corpus, spec, store))


def test_merge_ids_and_bad_inputs_are_named(tiny_corpus, tmp_path):
    domains = list(tiny_corpus.domains)[:3]
    spec = _spec(tiny_corpus, domains)
    assert spec.trunk_id != _spec(tiny_corpus, domains, 0.25).trunk_id
    assert len({spec.trunk_id, spec.merge_id, *map(spec.expert_id, domains)}) == 5
    # the pack and compile options never change an id
    same = spec.model_copy(update={"train": CFG.model_copy(update={"pack": 4})})
    assert same.expert_id(domains[0]) == spec.expert_id(domains[0])
    with pytest.raises(DataError, match="no expert for domain 'nope'"):
        spec.expert_id("nope")
    with pytest.raises(ValueError, match=r"trunk_fraction must be in \[0, 1\)"):
        _spec(tiny_corpus, domains, 1.0)
    with pytest.raises(DataError, match=r"experts not trained yet for \["):
        load_experts(tiny_corpus, spec, MergeStore(tmp_path / "empty"))
    other = spec.model_copy(update={"corpus": "0" * 16})
    with pytest.raises(DataError, match="specified for corpus 0000"):
        train_branches(tiny_corpus, other, MergeStore(tmp_path / "other"))
    losses = [{"a": 1.0}, {"a": 2.0}]
    with pytest.raises(DataError, match=r"over the experts' 3 domains"):
        merged_table(spec, np.full((2, 2), 0.5), losses, target=lambda r: 0.0, params=1)


def test_the_merged_table_marks_its_fidelity(tiny_corpus):
    domains = list(tiny_corpus.domains)[:3]
    spec = _spec(tiny_corpus, domains)
    losses = [{domains[0]: 3.0, domains[1]: 4.0}, {domains[0]: 2.0, domains[1]: 5.0}]
    mixtures = np.array([[1.0, 0, 0], [0.2, 0.3, 0.5]])
    table = merged_table(
        spec, mixtures, losses, target=lambda r: r["val_loss"][domains[1]], params=123
    )
    assert len(table) == 2 and len(set(table.run_ids)) == 2
    np.testing.assert_allclose(table.weights(domains), mixtures)
    np.testing.assert_allclose(table.target("target"), [4.0, 5.0])
    wide = table.wide()
    assert wide["f:merged"].to_list() == [1.0, 1.0]
    assert wide["f:trunk_fraction"].to_list() == [0.5, 0.5]
    assert wide["f:model_params"].to_list() == [123.0, 123.0]
