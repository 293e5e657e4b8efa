"""Linear model merging: a one-hot mixture gives back its expert, merging is linear in the
weights, experts branch from one trunk, and bad merge weights are named errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mixtures.errors import DataError
from proxies.config import TrainConfig
from proxies.merge import merge_members, merged_losses, train_experts
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
