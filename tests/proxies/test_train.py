import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from mixtures.errors import ConfigError, DataError
from proxies.batches import MixtureBatcher, eval_batch_size, eval_batches, eval_windows
from proxies.model import PRESETS, build_model, count_parameters, resolve_shape
from proxies.train import (
    TrainConfig,
    TrainResult,
    final_loss_divergence,
    lr_factor,
    make_adamw,
    next_token_loss,
    train_model,
    train_step,
)

CFG = TrainConfig(
    model="nano", seq_len=16, batch_size=8, train_tokens=4096, eval_tokens=512, lr=1e-2
)


def test_batcher_draws_domains_by_weight():
    a = np.zeros(1000, dtype=np.uint16)
    b = np.ones(1000, dtype=np.uint16)
    batcher = MixtureBatcher(
        [a, b], np.array([0.8, 0.2]), seq_len=8, batch_size=2000, rng=np.random.default_rng(0)
    )
    batch = batcher.next()
    assert batch.shape == (2000, 9) and batch.dtype == torch.int64
    rows_from_b = (batch[:, 0] == 1).float().mean().item()
    assert abs(rows_from_b - 0.2) < 0.03
    assert torch.all(batch == batch[:, :1])  # a row never mixes domains


def test_batcher_windows_are_contiguous_and_seeded():
    arr = np.arange(500, dtype=np.uint16)

    def make(s):
        return MixtureBatcher(
            [arr],
            np.array([1.0]),
            seq_len=10,
            batch_size=4,
            rng=np.random.default_rng(s),
        )

    batch = make(1).next()
    assert torch.all(batch[:, 1:] - batch[:, :-1] == 1)
    assert torch.equal(batch, make(1).next()) and not torch.equal(batch, make(2).next())


def test_batcher_accepts_weights_rounded_in_a_run_spec():
    """Found by the demo: a spec's weights (rounded to 8 decimals) summed to 1.00000002, which
    numpy's choice(p=...) rejects; the batcher renormalizes weights that passed its check."""
    arr = np.arange(500, dtype=np.uint16)
    w = np.array([0.04415678, 0.10799821, 0.16760992, 0.08775688, 0.15668387, 0.17394429,
                  0.0602683, 0.20158177])  # fmt: skip
    assert w.sum() != 1.0
    with pytest.raises(ValueError, match="do not sum to 1"):
        np.random.default_rng(0).choice(len(w), size=4, p=w)
    batcher = MixtureBatcher([arr] * 8, w, seq_len=8, batch_size=4, rng=np.random.default_rng(0))
    assert batcher.next().shape == (4, 9)


def test_batcher_rejects_bad_weights_and_short_domains():
    arr = np.arange(100, dtype=np.uint16)
    with pytest.raises(DataError, match="probability vector"):
        MixtureBatcher(
            [arr, arr], np.array([0.5, 0.6]), seq_len=8, batch_size=2, rng=np.random.default_rng(0)
        )
    with pytest.raises(DataError, match="fewer than one window"):
        MixtureBatcher(
            [arr[:5]], np.array([1.0]), seq_len=8, batch_size=2, rng=np.random.default_rng(0)
        )


def test_eval_windows_are_fixed_and_non_overlapping():
    w = eval_windows(np.arange(100, dtype=np.uint16), seq_len=10, max_tokens=45, layout="head")
    assert w.shape == (4, 11) and w[1, 0].item() == 10


def test_spread_eval_windows_cover_the_whole_split():
    arr = np.arange(1000, dtype=np.uint16)
    w = eval_windows(arr, seq_len=10, max_tokens=45)  # default layout: spread
    assert w.shape == (4, 11)
    assert torch.all(w[:, 1:] - w[:, :-1] == 1)  # each window is contiguous
    starts = w[:, 0].tolist()
    assert starts[0] == 0 and starts[-1] == 1000 - 11  # first and last tokens are covered
    assert all(b - a >= 10 for a, b in zip(starts, starts[1:], strict=False))  # no overlap
    with pytest.raises(DataError, match="unknown eval window layout 'tail'"):
        eval_windows(arr, seq_len=10, max_tokens=45, layout="tail")


def test_presets_and_init_are_reproducible():
    with pytest.raises(ConfigError, match="unknown model preset"):
        resolve_shape("huge")
    sizes = [
        count_parameters(build_model(s, vocab_size=256, seq_len=16, seed=0))
        for s in PRESETS.values()
    ]
    assert sizes == sorted(sizes) and sizes[0] > 0
    m1 = build_model(PRESETS["nano"], vocab_size=256, seq_len=16, seed=3)
    m2 = build_model(PRESETS["nano"], vocab_size=256, seq_len=16, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters(), strict=True))


def test_lr_schedule_warms_up_then_decays_to_floor():
    f = [lr_factor(s, total=100, warmup_fraction=0.1, min_ratio=0.1) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[99] == pytest.approx(0.1, abs=0.01)
    assert all(a >= b for a, b in zip(f[9:], f[10:], strict=False))


def test_adamw_decays_matrices_only():
    model = build_model(resolve_shape("nano"), vocab_size=300, seq_len=16, seed=0)
    decay, no_decay = make_adamw(model, CFG).param_groups
    assert decay["weight_decay"] == CFG.weight_decay and no_decay["weight_decay"] == 0.0
    assert decay["params"] and all(p.ndim >= 2 for p in decay["params"])
    assert no_decay["params"] and all(p.ndim < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_training_learns_and_the_mixture_matters(tiny_corpus):
    def train(weights: list[float], eval_domains: list[str]) -> TrainResult:
        return train_model(
            tiny_corpus,
            train_domains=["alpha", "beta", "gamma"],
            weights=np.array(weights),
            eval_domains=eval_domains,
            cfg=CFG,
            seed=0,
        )

    res_a = train([1.0, 0, 0], list(tiny_corpus.domains))
    res_b = train([0, 1.0, 0], list(tiny_corpus.domains))
    assert res_a.status == "ok" and res_a.tokens == CFG.steps * 8 * 16
    assert res_a.val_loss["alpha"] < math.log(300) - 1.0  # learned well below a uniform guess
    assert res_a.val_loss["alpha"] < res_b.val_loss["alpha"]
    assert res_b.val_loss["beta"] < res_a.val_loss["beta"]
    again = train([1.0, 0, 0], ["alpha"])
    assert again.val_loss["alpha"] == pytest.approx(res_a.val_loss["alpha"], abs=1e-5)


def test_exploding_loss_ends_the_run_as_diverged(tiny_corpus):
    cfg = CFG.model_copy(update={"lr": 1e6, "grad_clip": None, "warmup_fraction": 0.0})
    res = train_model(
        tiny_corpus,
        train_domains=["alpha", "beta"],
        weights=np.array([0.5, 0.5]),
        eval_domains=["alpha"],
        cfg=cfg,
        seed=0,
        log_every=2,
    )
    assert res.status == "diverged" and "training loss" in res.error
    assert res.val_loss == {}


def test_a_final_loss_worse_than_a_uniform_guess_counts_as_diverged():
    guess = math.log(512)  # 6.238
    weights = {"a": 0.5, "b": 0.5, "held_out": 0.0}
    # the runs of an absurd learning rate: finished, but worse than a guess on what they trained
    why = final_loss_divergence(
        {"a": 6.5, "b": 8.8, "held_out": 7.0}, weights, vocab_size=512, ratio=1.0
    )
    assert why is not None and "7.65 on its training domains" in why and "6.238" in why
    # a healthy run; a held-out domain worse than a guess does not count
    ok = {"a": 4.0, "b": 5.0, "held_out": 9.5}
    assert final_loss_divergence(ok, weights, vocab_size=512, ratio=1.0) is None
    # the mixture weighs the domains: mostly on a well-learned one
    tilted = {"a": 0.9, "b": 0.1}
    assert final_loss_divergence({"a": 5.0, "b": 9.0}, tilted, vocab_size=512, ratio=1.0) is None
    # the margin is the config's
    near = {"a": guess + 0.2, "b": guess + 0.2}
    assert final_loss_divergence(near, weights, vocab_size=512, ratio=1.0) is not None
    assert final_loss_divergence(near, weights, vocab_size=512, ratio=1.1) is None
    # no trained domain evaluated: the mean of the evaluated ones
    why = final_loss_divergence({"c": 7.0}, weights, vocab_size=512, ratio=1.0)
    assert why is not None and "its evaluated domains" in why


def test_train_model_applies_the_final_loss_rule(tiny_corpus):
    # a healthy run judged with a margin it cannot meet: diverged, its losses kept
    cfg = CFG.model_copy(update={"train_tokens": 1024, "final_loss_ratio": 0.1})
    res = train_model(
        tiny_corpus,
        train_domains=["alpha", "beta"],
        weights=np.array([0.5, 0.5]),
        eval_domains=["alpha", "beta", "delta"],
        cfg=cfg,
        seed=0,
    )
    assert res.status == "diverged" and "final validation loss" in res.error
    assert set(res.val_loss) == {"alpha", "beta", "delta"}


def test_final_loss_ratio_at_its_default_keeps_run_ids():
    from proxies.runs import RunSpec

    spec = RunSpec(
        kind="proxy",
        corpus="c0ffee",
        domains=("alpha", "beta"),
        weights=(0.25, 0.75),
        eval_domains=("alpha", "beta", "delta"),
        train=TrainConfig(model="nano", seq_len=16),
        seed=3,
    )
    assert spec.run_id == "8e6e2034bcf7a859"  # the id before the field existed
    stricter = spec.model_copy(
        update={"train": spec.train.model_copy(update={"final_loss_ratio": 0.9})}
    )
    assert stricter.hashed_data()["train"]["final_loss_ratio"] == 0.9
    assert stricter.run_id != spec.run_id


def _grads(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("tie", [True, False])
def test_chunked_loss_equals_the_plain_loss_and_its_gradients(tie):
    shape = PRESETS["nano"].model_copy(update={"tie_embeddings": tie})
    model = build_model(shape, vocab_size=300, seq_len=16, seed=0)
    batch = torch.randint(0, 300, (4, 17), generator=torch.Generator().manual_seed(0))
    plain = next_token_loss(model, batch, autocast=False)
    # the small-problem path is the one-shot fp32 loss, bit for bit
    logits = model(input_ids=batch[:, :-1], use_cache=False).logits
    reference = F.cross_entropy(logits.float().reshape(-1, 300), batch[:, 1:].reshape(-1))
    assert torch.equal(plain, reference)
    plain.backward()
    plain_grads = _grads(model)
    model.zero_grad(set_to_none=True)
    # 64 tokens in chunks of 5: twelve full chunks and a partial one
    chunked = next_token_loss(
        model, batch, autocast=False, plain_max_elements=0, chunk_elements=5 * 300
    )
    assert chunked.item() == pytest.approx(plain.item(), rel=1e-6)
    chunked.backward()
    for g, h in zip(plain_grads, _grads(model), strict=True):
        torch.testing.assert_close(h, g, rtol=1e-5, atol=1e-7)
    with torch.inference_mode():  # evaluation: no checkpointing, same value
        evaluated = next_token_loss(
            model, batch, autocast=False, plain_max_elements=0, chunk_elements=5 * 300
        )
    assert evaluated.item() == pytest.approx(plain.item(), rel=1e-6)


def test_chunked_loss_starts_above_the_threshold():
    """At the threshold the whole logits are computed; one element more and they never are."""
    model = build_model(PRESETS["nano"], vocab_size=300, seq_len=16, seed=0)
    batch = torch.randint(0, 300, (2, 9), generator=torch.Generator().manual_seed(1))
    calls: list[tuple[int, ...]] = []
    head = model.get_output_embeddings()
    head.register_forward_hook(lambda _m, inputs, _out: calls.append(tuple(inputs[0].shape)))
    next_token_loss(model, batch, autocast=False, plain_max_elements=2 * 8 * 300)
    assert calls == [(2, 8, 32)]
    calls.clear()
    next_token_loss(
        model, batch, autocast=False, plain_max_elements=2 * 8 * 300 - 1, chunk_elements=6 * 300
    )
    assert calls == [(6, 32), (6, 32), (4, 32)]


def test_accumulated_micro_batches_make_the_same_step():
    cfg = CFG.model_copy(update={"grad_clip": 0.5})
    micro = TrainConfig.model_validate({**cfg.model_dump(), "micro_batch_size": 2})
    assert micro.micro_batches == 4
    batch = torch.randint(0, 300, (8, 17), generator=torch.Generator().manual_seed(0))

    def one_step(c: TrainConfig) -> tuple[float, list[torch.Tensor], list[torch.Tensor]]:
        model = build_model(c.shape, vocab_size=300, seq_len=16, seed=0)
        opt = make_adamw(model, c)
        loss = train_step(model, batch, cfg=c)
        torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        grads = _grads(model)
        opt.step()
        return loss.item(), grads, [p.detach() for p in model.parameters()]

    loss_whole, grads_whole, params_whole = one_step(cfg)
    loss_micro, grads_micro, params_micro = one_step(micro)
    assert loss_micro == pytest.approx(loss_whole, rel=1e-6)
    for g, h in zip(grads_whole, grads_micro, strict=True):
        torch.testing.assert_close(h, g, rtol=1e-5, atol=1e-8)
    initial = build_model(cfg.shape, vocab_size=300, seq_len=16, seed=0).parameters()
    assert not all(torch.equal(p, q) for p, q in zip(initial, params_whole, strict=True))
    # AdamW's first update is about lr * sign(grad): where a gradient is near zero, rounding
    # differences of the gradient move it by a small fraction of lr, so that is the tolerance.
    for p, q in zip(params_whole, params_micro, strict=True):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=cfg.lr * 1e-2)


def test_micro_batch_size_must_divide_the_batch_and_caps_evaluation():
    with pytest.raises(
        ValidationError, match="batch_size 8 must be divisible by micro_batch_size 3"
    ):
        TrainConfig(batch_size=8, micro_batch_size=3)
    with pytest.raises(
        ValidationError, match="batch_size 8 must be divisible by micro_batch_size 16"
    ):
        TrainConfig(batch_size=8, micro_batch_size=16)
    assert TrainConfig().micro_batch_size is None and TrainConfig().micro_batches == 1
    assert eval_batch_size(TrainConfig(eval_batch_size=32)) == 32
    capped = TrainConfig(batch_size=16, micro_batch_size=4, eval_batch_size=32)
    assert eval_batch_size(capped) == 4
    val = np.arange(2000, dtype=np.uint16)
    sizes = [len(b) for b in eval_batches(val, capped.model_copy(update={"seq_len": 10}))]
    assert max(sizes) == 4 and sum(sizes) == 1999 // 10  # every window, four at a time


def test_training_with_micro_batches_matches_training_without(tiny_corpus):
    def train(cfg: TrainConfig) -> TrainResult:
        return train_model(
            tiny_corpus,
            train_domains=["alpha", "beta", "gamma"],
            weights=np.array([0.5, 0.3, 0.2]),
            eval_domains=["alpha", "beta"],
            cfg=cfg,
            seed=0,
        )

    whole = train(CFG)
    micro = train(TrainConfig.model_validate({**CFG.model_dump(), "micro_batch_size": 2}))
    assert micro.status == "ok" and micro.steps == whole.steps and micro.tokens == whole.tokens
    for domain, loss in whole.val_loss.items():
        assert micro.val_loss[domain] == pytest.approx(loss, rel=1e-4)
