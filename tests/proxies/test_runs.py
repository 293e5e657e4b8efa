import hashlib
import json
import shutil

import numpy as np
import polars as pl
import pytest

from mixtures.errors import ConfigError, DataError
from mixtures.mixture import Mixture
from proxies.config import PRESETS
from proxies.documents.text import clean_text
from proxies.planning import natural_mixture, split_domains
from proxies.prepare import PrepOptions, TokenizerSpec, prepare_tokens
from proxies.prepare.plan import mix64, unit_interval
from proxies.records import records_to_tables, target_fn
from proxies.runs import (
    RunSpec,
    RunStore,
    execute_run,
    finished_record,
    read_run_list,
    write_run_list,
)
from proxies.train import TrainConfig

CFG = TrainConfig(model="nano", seq_len=16, batch_size=4, train_tokens=512, eval_tokens=256)
TRAIN = ["alpha", "beta", "gamma"]


def spec_for(corpus, weights, seed=0):
    return RunSpec.for_mixture(
        Mixture.from_array(TRAIN, weights),
        kind="proxy",
        corpus=corpus,
        train_domains=TRAIN,
        eval_domains=list(corpus.domains),
        train=CFG,
        seed=seed,
    )


def test_run_id_is_a_content_hash(tiny_corpus):
    a = spec_for(tiny_corpus, [0.5, 0.25, 0.25])
    assert a.run_id == spec_for(tiny_corpus, [0.5, 0.25, 0.25]).run_id
    assert a.run_id == RunSpec.model_validate_json(a.model_dump_json()).run_id
    assert a.run_id != spec_for(tiny_corpus, [0.25, 0.5, 0.25]).run_id
    assert a.run_id != spec_for(tiny_corpus, [0.5, 0.25, 0.25], seed=1).run_id
    other = a.model_copy(update={"train": CFG.model_copy(update={"lr": 1e-4})})
    assert a.run_id != other.run_id


def test_finished_runs_are_skipped_and_failed_ones_retried(tiny_corpus, tmp_path):
    store = RunStore(tmp_path)
    spec = spec_for(tiny_corpus, [0.4, 0.3, 0.3])
    rec, computed = execute_run(spec, tiny_corpus, store)
    assert computed and rec["result"]["status"] == "ok"
    mtime = store.path(spec.run_id).stat().st_mtime_ns
    rec2, computed2 = execute_run(spec, tiny_corpus, store)
    assert not computed2 and rec2 == rec
    assert store.path(spec.run_id).stat().st_mtime_ns == mtime
    failed = dict(rec, result=dict(rec["result"], status="failed"))
    store.write(failed)
    assert store.finished(spec.run_id) is None
    _, computed3 = execute_run(spec, tiny_corpus, store)
    assert computed3
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_crashing_run_is_recorded_as_failed(tiny_corpus, tmp_path):
    domains = ["alpha", "beta", "nope"]
    bad = RunSpec.for_mixture(
        Mixture.from_array(domains, [1.0, 0.0, 0.0]),
        kind="proxy",
        corpus=tiny_corpus,
        train_domains=domains,
        eval_domains=list(tiny_corpus.domains),
        train=CFG,
        seed=0,
    )
    rec, computed = execute_run(bad, tiny_corpus, RunStore(tmp_path))
    assert computed and rec["result"]["status"] == "failed"
    assert "unknown domain 'nope'" in rec["result"]["error"]


def test_run_list_file_round_trips_and_names_its_problems(tiny_corpus, tmp_path):
    runs = [(f"mix{i}", spec_for(tiny_corpus, [0.5, 0.25, 0.25], seed=i)) for i in range(3)]
    path = write_run_list(runs, tmp_path / "run_lists")
    assert read_run_list(path) == runs
    # content-named: same runs, same file
    assert write_run_list(runs, tmp_path / "run_lists") == path
    assert write_run_list(runs[:2], tmp_path / "run_lists") != path
    with pytest.raises(DataError, match="run-list file .*nope.json does not exist"):
        read_run_list(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"label": "x"}]))
    with pytest.raises(DataError, match="bad.json is not a list of runs"):
        read_run_list(bad)


def test_corrupt_record_is_a_clear_error(tmp_path):
    (tmp_path / "abc.json").write_text("{not json")
    with pytest.raises(DataError, match="corrupt"):
        RunStore(tmp_path).load("abc")


def _record(run_id, weights, losses, status="ok", label=""):
    return {
        "run_id": run_id,
        "label": label,
        "spec": {"kind": "proxy", "domains": TRAIN, "weights": weights, "seed": 0},
        "result": {
            "status": status,
            "val_loss": losses if status == "ok" else {},
            "wall_seconds": 1.0,
            "tokens_per_second": 10.0,
            "non_embedding_params": 5,
            "tokens": 100,
            "error": None,
        },
    }


def test_records_to_tables_keeps_ok_runs_and_joins_by_id():
    recs = [
        _record("r1", [1.0, 0.0, 0.0], {"alpha": 1.0, "beta": 3.0, "gamma": 2.0, "delta": 4.0}),
        _record("r2", [0.0, 1.0, 0.0], {"alpha": 2.0, "beta": 1.0, "gamma": 2.5, "delta": 4.0}),
        _record("r3", [0.0, 0.0, 1.0], {}, status="diverged"),
    ]
    fn = target_fn("weighted", domain=None, weights={"alpha": 1, "beta": 3}, eval_domains=[])
    table, meta = records_to_tables(recs, train_domains=TRAIN, target=fn)
    assert table.run_ids == ("r1", "r2")
    assert table.target("target").tolist() == pytest.approx([2.5, 1.25])
    assert table.target("val_loss/delta").tolist() == [4.0, 4.0]
    assert meta.filter(pl.col("run_id") == "r3")["status"].item() == "diverged"
    assert meta.filter(pl.col("run_id") == "r3")["target"].item() is None
    with pytest.raises(DataError, match="expected domains"):
        records_to_tables(recs, train_domains=["x", "y"], target=fn)


def test_split_domains_and_natural_mixture():
    train, evald = split_domains(["a", "b", "c"], ["c"], holdout=True)
    assert (train, evald) == (["a", "b"], ["a", "b", "c"])
    assert split_domains(["a", "b", "c"], ["c"], holdout=False)[0] == ["a", "b", "c"]
    with pytest.raises(ConfigError, match=r"not in the corpus"):
        split_domains(["a", "b"], ["z"], holdout=True)
    nat = natural_mixture({"a": 30, "b": 10}, ["a", "b"])
    assert np.allclose(nat.to_array(["a", "b"]), [0.75, 0.25])
    assert json.dumps(dict(nat))


def test_run_id_hashes_the_resolved_model_shape(tiny_corpus, monkeypatch):
    named = spec_for(tiny_corpus, [0.5, 0.25, 0.25])
    nano = PRESETS["nano"]

    def with_model(model):
        return named.model_copy(update={"train": CFG.model_copy(update={"model": model})})

    # the identical explicit shape, with or without the defaults spelled out, is the same run
    assert with_model(nano).run_id == named.run_id
    spelled = nano.model_copy(update={"n_kv_heads": nano.n_heads, "tie_embeddings": True})
    assert with_model(spelled).run_id == named.run_id
    assert with_model(nano.model_copy(update={"d_ff": 128})).run_id != named.run_id
    assert with_model(nano.model_copy(update={"n_kv_heads": 1})).run_id != named.run_id
    assert with_model(nano.model_copy(update={"tie_embeddings": False})).run_id != named.run_id
    assert with_model("micro").run_id != named.run_id
    # editing a preset's shape names new runs
    monkeypatch.setitem(PRESETS, "nano", nano.model_copy(update={"n_layers": 2}))
    assert named.run_id != with_model(nano).run_id
    assert named.run_id == with_model(PRESETS["nano"]).run_id


def test_unset_new_train_fields_keep_the_run_id(tiny_corpus):
    spec = spec_for(tiny_corpus, [0.5, 0.25, 0.25])
    train = spec.hashed_data()["train"]
    assert "micro_batch_size" not in train
    assert train["model"] == {
        "d_model": 32,
        "n_layers": 1,
        "n_heads": 2,
        "n_kv_heads": 2,
        "d_ff": 64,
        "tie_embeddings": True,
    }
    micro = TrainConfig.model_validate({**CFG.model_dump(), "micro_batch_size": 2})
    accumulated = spec.model_copy(update={"train": micro})
    assert accumulated.hashed_data()["train"]["micro_batch_size"] == 2
    assert accumulated.run_id != spec.run_id
    # the stored spec keeps the preset's name, and reading it back gives the same id
    assert spec.model_dump(mode="json")["train"]["model"] == "nano"
    assert RunSpec.model_validate_json(accumulated.model_dump_json()).run_id == accumulated.run_id


def test_run_id_of_a_literal_spec_is_pinned():
    """A change to the hashed data renames every run (their results are no longer found):
    this literal id makes such a change deliberate."""
    spec = RunSpec(
        kind="proxy",
        corpus="c0ffee",
        domains=("alpha", "beta"),
        weights=(0.25, 0.75),
        eval_domains=("alpha", "beta", "delta"),
        train=TrainConfig(model="nano", seq_len=16),
        seed=3,
    )
    assert spec.run_id == "8e6e2034bcf7a859"
    shape = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64}
    explicit = spec.model_copy(update={"train": TrainConfig(model=shape, seq_len=16)})
    assert explicit.run_id == "8e6e2034bcf7a859"


def _split_of(text: str, options: PrepOptions) -> str:
    """The split a one-document text file goes to (``proxies.prepare.worker``'s rule)."""
    digest = hashlib.sha256(clean_text(text).encode()).digest()
    select = np.frombuffer(digest[8:16], dtype="<u8")
    val = unit_interval(mix64(select, options.seed))[0] < options.val_fraction
    return "val" if val else "train"


def test_a_held_out_domains_train_split_changes_no_run_id(tiny_corpus, tiny_domains, tmp_path):
    options = PrepOptions(val_fraction=0.2, seed=0)
    tok = TokenizerSpec(path=tiny_corpus.path / "tokenizer.json")
    changed = {}
    for name, folder in tiny_domains.items():
        changed[name] = shutil.copytree(folder, tmp_path / "domains" / name)
    extra = next(
        text
        for i in range(100)
        if _split_of(text := f"delta extra document {i} " + "thou art the King " * 8, options)
        == "train"
    )
    (changed["delta"] / "extra.txt").write_text(extra)
    before = prepare_tokens(tiny_domains, tmp_path / "before", tokenizer=tok, options=options)
    after = prepare_tokens(changed, tmp_path / "after", tokenizer=tok, options=options)
    # the corpus changed, in delta's train split only
    assert after.fingerprint != before.fingerprint
    assert before.identity is not None and after.identity is not None
    old, new = before.identity["splits"], after.identity["splits"]
    assert new["delta"]["train"] != old["delta"]["train"]
    assert {**new, "delta": new["delta"]["val"]} == {**old, "delta": old["delta"]["val"]}

    def spec(corpus, train_domains):
        return RunSpec.for_mixture(
            Mixture.from_array(train_domains, [1 / len(train_domains)] * len(train_domains)),
            kind="proxy",
            corpus=corpus,
            train_domains=train_domains,
            eval_domains=list(corpus.domains),  # delta's val split is read: it is the target
            train=CFG,
            seed=0,
        )

    held_out = ["alpha", "beta", "gamma"]
    assert spec(before, held_out).run_id == spec(after, held_out).run_id
    every = ["alpha", "beta", "gamma", "delta"]  # trains on delta: a new corpus, a new run
    assert spec(before, every).run_id != spec(after, every).run_id
    # a run that reads every split of every domain is named by the corpus's fingerprint, as
    # every run was before runs were named by what they read: its id is unchanged
    assert spec(before, every).corpus == before.fingerprint
    assert spec(before, held_out).corpus != before.fingerprint


def test_a_run_finished_under_its_whole_corpus_id_is_adopted(tiny_corpus, tmp_path):
    store = RunStore(tmp_path)
    spec = spec_for(tiny_corpus, [0.5, 0.25, 0.25])  # delta held out: a part of the corpus
    whole = spec.model_copy(update={"corpus": tiny_corpus.fingerprint})
    assert spec.run_id != whole.run_id
    earlier = {
        "run_id": whole.run_id,
        "spec": whole.model_dump(mode="json"),
        "result": {"status": "ok", "val_loss": {"alpha": 1.5}},
    }
    store.write(earlier)
    record, computed = execute_run(spec, tiny_corpus, store)
    assert not computed  # nothing trained
    assert record["run_id"] == spec.run_id and record["adopted_from"] == whole.run_id
    assert record["result"] == earlier["result"]
    assert store.finished(spec.run_id) == record
    # and not for another corpus: a spec whose corpus differs finds nothing to adopt
    other = spec.model_copy(update={"seed": 1})
    assert finished_record(other, store, tiny_corpus) is None
