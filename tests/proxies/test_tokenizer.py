"""Your tokenizer instead of a trained one: reading it, its EOS, uint32 ids past 65,536 and its
content hash in the corpus fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from mixtures.errors import DataError
from proxies.prepare import PrepOptions, TokenizerSpec, prepare_tokens
from proxies.tokenizer import EOS_CANDIDATES, load_tokenizer, train_tokenizer

#: The WordLevel test tokenizer puts every real word past this id, so uint16 cannot hold them.
HIGH = 65_600


def word_tokenizer(words: list[str], *, eos: str = "<|endoftext|>") -> Tokenizer:
    """A WordLevel tokenizer with more than 65,536 ids: filler tokens first, then ``words``
    (ids from ``HIGH``), then ``eos``."""
    vocab = {"[UNK]": 0}
    vocab.update({f"filler{i}": i for i in range(1, HIGH)})
    vocab.update({w: HIGH + i for i, w in enumerate(sorted(set(words)))})
    vocab[eos] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


def _words(domains: dict) -> list[str]:
    return [
        w for folder in domains.values() for p in folder.iterdir() for w in p.read_text().split()
    ]


@pytest.fixture(scope="module")
def docs(tiny_domains):
    return tiny_domains


def _build(docs, out: Path, tokenizer, *, vocab_size=None, eos_token=None):
    spec = TokenizerSpec(path=tokenizer, eos_token=eos_token, vocab_size=vocab_size)
    return prepare_tokens(docs, out, tokenizer=spec, options=PrepOptions(val_fraction=0.2))


def test_transformers_folder_file_and_eos_choice(tmp_path):
    from transformers import PreTrainedTokenizerFast

    tok = word_tokenizer(["a", "b", "</s>"], eos="<eos>")
    folder = tmp_path / "hf"
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>").save_pretrained(folder)
    given = load_tokenizer(folder)
    assert given.path == folder / "tokenizer.json" and given.vocab_size > 65_536
    # the folder's configured eos_token wins over the common names
    assert given.eos_id() == tok.token_to_id("</s>")
    assert given.eos_id("<eos>") == tok.token_to_id("<eos>")
    tok.save(str(tmp_path / "t.json"))
    plain = load_tokenizer(tmp_path / "t.json")
    assert plain.eos_id() == tok.token_to_id("</s>")  # first common name present
    assert plain.sha256 == load_tokenizer(tmp_path / "t.json").sha256
    with pytest.raises(DataError, match=r"none of the EOS tokens tried: \['<sep>'\]"):
        plain.eos_id("<sep>")


def test_missing_eos_lists_what_was_tried(tmp_path):
    tok = word_tokenizer(["a"], eos="<end>")
    tok.save(str(tmp_path / "t.json"))
    with pytest.raises(DataError) as err:
        load_tokenizer(tmp_path / "t.json").eos_id()
    assert all(name in str(err.value) for name in EOS_CANDIDATES)
    assert "corpus.eos_token" in str(err.value)


def test_a_tokenizer_that_does_not_load_is_named(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"model": "nope"}')
    with pytest.raises(DataError, match=f"{bad} does not load as a tokenizer"):
        load_tokenizer(bad)
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="does not load as a tokenizer"):
        load_tokenizer(tmp_path / "binary.json")
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "vocab.json").write_text("{}")
    with pytest.raises(DataError, match="has no tokenizer.json"):
        load_tokenizer(tmp_path / "slow")
    with pytest.raises(DataError, match="does not exist"):
        load_tokenizer(tmp_path / "nowhere")


def test_over_65536_ids_writes_uint32_end_to_end(tmp_path, docs, tiny_domains):
    tok = word_tokenizer(_words(tiny_domains))
    tok.save(str(tmp_path / "big.json"))
    corpus = _build(docs, tmp_path / "tokens", tmp_path / "big.json")
    assert corpus.dtype == np.uint32 and corpus.vocab_size == tok.get_vocab_size() > 65_536
    arr = corpus.array("beta", "train")
    assert arr.dtype == np.uint32 and len(arr) == corpus.tokens("train")["beta"]
    assert int(arr.max()) == corpus.eos_id and int(arr[arr != corpus.eos_id].min()) >= HIGH
    first = arr[: int(np.flatnonzero(arr == corpus.eos_id)[0])]
    assert corpus.tokenizer().decode(first.tolist()).startswith("beta document")
    meta = json.loads((corpus.path / "tokens.json").read_text())
    assert meta["dtype"] == "uint32" and meta["tokenizer_sha256"]


def test_tokenizer_hash_is_in_the_fingerprint(tmp_path, docs, tiny_corpus, tiny_domains):
    texts = [" ".join(_words(tiny_domains))]
    for name, vocab in (("one", 300), ("two", 320)):
        train_tokenizer(texts, vocab_size=vocab).save(str(tmp_path / f"{name}.json"))
    one = _build(docs, tmp_path / "t1", tmp_path / "one.json")
    two = _build(docs, tmp_path / "t2", tmp_path / "two.json")
    again = _build(docs, tmp_path / "t1", tmp_path / "one.json")
    assert one.fingerprint != two.fingerprint
    assert again.fingerprint == one.fingerprint
    assert tiny_corpus.fingerprint not in (one.fingerprint, two.fingerprint)
    # the same tokenizer with a different EOS is a different corpus
    other_eos = _build(docs, tmp_path / "t3", tmp_path / "one.json", eos_token="a")
    assert other_eos.fingerprint != one.fingerprint


def test_edited_tokenizer_rebuilds_in_place(tmp_path, docs):
    path = tmp_path / "tok.json"
    train_tokenizer(["x y z"] * 20, vocab_size=300).save(str(path))
    first = _build(docs, tmp_path / "t", path)
    train_tokenizer(["p q r s"] * 20, vocab_size=300).save(str(path))
    second = _build(docs, tmp_path / "t", path)
    assert second.fingerprint != first.fingerprint
    saved = (tmp_path / "t" / "tokenizer.json").read_bytes()
    assert saved == path.read_bytes()


def test_vocab_size_beside_a_tokenizer_must_be_its_own(tmp_path, docs):
    path = tmp_path / "tok.json"
    train_tokenizer(["x y z"] * 20, vocab_size=300).save(str(path))
    n = Tokenizer.from_file(str(path)).get_vocab_size()
    with pytest.raises(DataError, match=f"corpus.vocab_size is 4096 but tokenizer .* has {n}"):
        _build(docs, tmp_path / "t", path, vocab_size=4096)
    assert not (tmp_path / "t").exists()
    assert _build(docs, tmp_path / "t", path, vocab_size=n).vocab_size == n


@pytest.mark.slow
def test_a_sweep_end_to_end_with_a_131k_id_tokenizer(tmp_path, tiny_domains):
    """`mixopt sweep` on text folders with a tokenizer of 131,072 ids: uint32 token files, the
    proxies' embedding the whole vocabulary, and every run ok."""
    import os
    import subprocess
    import sys

    import polars as pl

    words = _words(tiny_domains)
    tok = word_tokenizer(words)
    vocab = dict(tok.get_vocab())
    vocab.update({f"pad{i}": len(vocab) + i for i in range(131_072 - len(vocab))})
    big = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    big.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    big.save(str(tmp_path / "tok131k.json"))
    folders = "{" + ", ".join(f"{d}: {p}" for d, p in sorted(tiny_domains.items())) + "}"
    root = Path(__file__).resolve().parents[2]
    sets = [
        "corpus.source=folders",
        f"corpus.folders={folders}",
        f"corpus.tokenizer={tmp_path / 'tok131k.json'}",
        "corpus.vocab_size=null",
        "corpus.cap_mb=null",
        f"corpus.cache_dir={tmp_path / 'corpus'}",
        "target.domain=gamma",
        "sweep.n_runs=2",
        "proxy.train_tokens=4096",
    ]
    args = ["sweep", "--config", str(root / "configs/smoke.yaml")]
    args += ["--experiment-dir", str(tmp_path / "exp")]
    for item in sets:
        args += ["--set", item]
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"))
    env.pop("PREFECT_API_URL", None)
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    meta = pl.read_parquet(tmp_path / "exp" / "runs_meta.parquet")
    # the 2 sampled runs and the baselines (uniform is natural here: equal-sized domains)
    assert {"mix000", "mix001", "natural"} <= set(meta["label"])
    assert set(meta["status"]) == {"ok"}
    (build,) = (tmp_path / "corpus").glob("folders-*/tokens")
    info = json.loads((build / "tokens.json").read_text())
    assert (info["vocab_size"], info["dtype"]) == (131_072, "uint32")
    pieces = json.loads((build / "shards.json").read_text())["domains"]["gamma"]["train"]
    ids = np.fromfile(build / pieces[0]["path"], dtype=np.uint32)
    assert int(ids.max()) == info["eos_id"] and int(ids[ids != info["eos_id"]].min()) >= HIGH
