"""Runs that start from a given model (``train.init_from``): the weights they start from, ids
that follow the weights' content, and named errors for a folder that does not fit."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from configs.schema import load_config
from configs.specs import check_init_models
from mixtures.errors import DataError
from mixtures.mixture import Mixture
from proxies.model import build_model, check_init_folder
from proxies.runs import RunSpec
from proxies.train import TrainConfig, evaluate, train_model

CFG = TrainConfig(model="nano", seq_len=16, batch_size=4, train_tokens=64, eval_tokens=256)


def _save(folder, corpus, *, seed=7, shape=None, vocab=None):
    model = build_model(
        shape or CFG.shape, vocab_size=vocab or corpus.vocab_size, seq_len=16, seed=seed
    )
    model.save_pretrained(folder)
    return model


def _spec(corpus, cfg):
    domains = list(corpus.domains)
    return RunSpec.for_mixture(
        Mixture.uniform(domains),
        kind="proxy",
        corpus=corpus,
        train_domains=domains,
        eval_domains=domains,
        train=cfg,
        seed=0,
    )


def test_a_run_starts_from_the_given_model(tiny_corpus, tmp_path):
    model = _save(tmp_path / "base", tiny_corpus)
    domains = list(tiny_corpus.domains)
    # one step at a learning rate too small to move a weight: the run ends where it started
    cfg = CFG.model_copy(update={"init_from": str(tmp_path / "base"), "lr": 1e-12})
    kwargs = {"train_domains": domains, "weights": np.full(len(domains), 1 / len(domains))}
    given = train_model(tiny_corpus, **kwargs, eval_domains=domains, cfg=cfg, seed=0)
    start = evaluate(model, tiny_corpus, domains, cfg=cfg, device=torch.device("cpu"))
    for d in domains:
        assert given.val_loss[d] == pytest.approx(start[d], abs=1e-4)
    scratch = train_model(
        tiny_corpus,
        **kwargs,
        eval_domains=domains,
        cfg=CFG.model_copy(update={"lr": 1e-12}),
        seed=0,
    )
    assert all(abs(scratch.val_loss[d] - start[d]) > 1e-3 for d in domains)


def test_run_ids_follow_the_weights_not_the_path(tiny_corpus, tmp_path):
    _save(tmp_path / "a", tiny_corpus)
    shutil.copytree(tmp_path / "a", tmp_path / "moved")
    ids = {
        name: _spec(tiny_corpus, CFG.model_copy(update={"init_from": str(tmp_path / name)})).run_id
        for name in ("a", "moved")
    }
    assert ids["a"] == ids["moved"]
    assert ids["a"] != _spec(tiny_corpus, CFG).run_id
    # a run from scratch keeps the id it had before the field existed
    assert "init_from" not in _spec(tiny_corpus, CFG).hashed_data()["train"]
    _save(tmp_path / "a", tiny_corpus, seed=8)  # new weights at the same path: new runs
    again = _spec(tiny_corpus, CFG.model_copy(update={"init_from": str(tmp_path / "a")}))
    assert again.run_id != ids["a"]


def test_folders_that_do_not_fit_are_named(tiny_corpus, tmp_path):
    vocab = tiny_corpus.vocab_size
    check = lambda folder: check_init_folder(folder, shape=CFG.shape, vocab_size=vocab)  # noqa: E731
    with pytest.raises(DataError, match="init_from .*missing is not a folder"):
        check(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"has no weights file \(model.safetensors"):
        check(tmp_path / "empty")
    wide = CFG.shape.model_copy(update={"d_model": CFG.shape.d_model * 2})
    _save(tmp_path / "wide", tiny_corpus, shape=wide)
    d = CFG.shape.d_model
    with pytest.raises(DataError, match=rf"another shape: d_model {2 * d} \(the run's {d}\)"):
        check(tmp_path / "wide")
    _save(tmp_path / "vocab", tiny_corpus, vocab=vocab + 10)
    with pytest.raises(DataError, match=f"vocabulary of {vocab + 10} ids, the corpus {vocab}"):
        check(tmp_path / "vocab")
    _save(tmp_path / "gpt", tiny_corpus)
    config = json.loads((tmp_path / "gpt" / "config.json").read_text())
    (tmp_path / "gpt" / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    with pytest.raises(DataError, match="holds a 'gpt2' model"):
        check(tmp_path / "gpt")
    _save(tmp_path / "tok", tiny_corpus)
    (tmp_path / "tok" / "tokenizer.json").write_text("{}")
    with pytest.raises(DataError, match="saved with another tokenizer"):
        check_init_folder(tmp_path / "tok", shape=CFG.shape, vocab_size=vocab, tokenizer_sha256="0")


def test_the_experiment_checks_every_init_from_before_training(tiny_corpus, tmp_path):
    _save(tmp_path / "base", tiny_corpus)
    base = tmp_path / "base"
    config = load_config(
        "configs/smoke.yaml",
        overrides=[f"proxy.init_from={base}", f"target_run.train.init_from={base}"],
    )
    # the smoke proxy is nano like the saved model; its target run is nano at another seq_len,
    # which a Llama does not fix: both fit
    assert config.proxy.shape == CFG.shape
    check_init_models(config, tiny_corpus)
    small = config.model_copy(
        update={
            "target_run": config.target_run.model_copy(
                update={"train": config.target_run.train.model_copy(update={"model": "micro"})}
            )
        }
    )
    with pytest.raises(DataError, match=r"^target_run\.train\.init_from .* another shape"):
        check_init_models(small, tiny_corpus)


def test_a_saved_run_is_a_base_that_passes_the_checks(tiny_corpus, tmp_path):
    domains = list(tiny_corpus.domains)
    weights = np.full(len(domains), 1 / len(domains))
    kwargs = {"train_domains": domains, "weights": weights, "eval_domains": domains, "seed": 0}
    trained = train_model(tiny_corpus, **kwargs, cfg=CFG, save_to=tmp_path / "base")
    assert (tmp_path / "base" / "tokenizer.json").read_bytes() == (
        tiny_corpus.path / "tokenizer.json"
    ).read_bytes()
    sha = hashlib.sha256((tiny_corpus.path / "tokenizer.json").read_bytes()).hexdigest()
    check_init_folder(
        tmp_path / "base", shape=CFG.shape, vocab_size=tiny_corpus.vocab_size, tokenizer_sha256=sha
    )
    # a run from it starts where the saved run ended
    still = CFG.model_copy(update={"init_from": str(tmp_path / "base"), "lr": 1e-12})
    resumed = train_model(tiny_corpus, **kwargs, cfg=still)
    for d in domains:
        assert resumed.val_loss[d] == pytest.approx(trained.val_loss[d], abs=1e-4)
