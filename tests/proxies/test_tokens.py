import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mixtures.errors import DataError
from proxies.prepare import PrepOptions, TokenizerSpec, prepare_tokens
from proxies.tokens import TOKEN_COUNTS_SCHEMA, TokenCorpus


def test_token_arrays_roundtrip_and_counts(tiny_corpus):
    assert tiny_corpus.domains == ("alpha", "beta", "delta", "gamma")
    assert dict(tiny_corpus.counts.schema) == TOKEN_COUNTS_SCHEMA
    tok = tiny_corpus.tokenizer()
    arr = tiny_corpus.array("beta", "train")
    assert arr.dtype == np.uint16 and len(arr) == tiny_corpus.tokens("train")["beta"]
    first_doc = arr[: int(np.flatnonzero(arr == tiny_corpus.eos_id)[0])]
    assert tok.decode(first_doc.tolist()).startswith("beta document")
    assert int(arr.max()) < tiny_corpus.vocab_size


def test_build_is_reused_when_key_matches(tiny_corpus, tiny_domains):
    piece = json.loads((tiny_corpus.path / "shards.json").read_text())["domains"]["alpha"]["train"]
    file = tiny_corpus.path / piece[0]["path"]
    before = file.stat().st_mtime_ns
    again = prepare_tokens(
        tiny_domains,
        tiny_corpus.path,
        tokenizer=TokenizerSpec(vocab_size=300, sample_bytes=200_000),
        options=PrepOptions(val_fraction=0.2, seed=0),
    )
    assert again.fingerprint == tiny_corpus.fingerprint
    assert file.stat().st_mtime_ns == before


def test_errors_name_the_problem(tiny_corpus, tmp_path):
    with pytest.raises(DataError, match="unknown domain 'nope'"):
        tiny_corpus.array("nope", "train")
    with pytest.raises(DataError, match="missing tokens.json"):
        TokenCorpus.load(tmp_path)
    with pytest.raises(DataError, match="vocab_size"):
        prepare_tokens(
            {"a": tmp_path},
            tmp_path / "t",
            tokenizer=TokenizerSpec(vocab_size=100),
            options=PrepOptions(),
        )


#: Identity of the tiny corpus built with the trained BPE. Every finished run's id includes the
#: fingerprint, and the build folder's name the config key: if either moves, every existing
#: experiment trains its runs again.
TINY_FINGERPRINT = "f1ca3b239a1231f9"
TINY_TOKENS_SHA256 = "5614261dbc72a7d3321d3efba96da54a380efcbd2f89786da94515011c98b14b"
CONFIG_KEYS = {"default": "32806b155332", "demo": "4f7d943cb09b", "smoke": "6e32d9c9f34d"}


def test_trained_tokenizer_build_keeps_its_identity(tiny_corpus):
    from configs.schema import CorpusConfig, load_config

    h = hashlib.sha256()
    for domain in tiny_corpus.domains:
        for split in ("train", "val"):
            h.update(np.asarray(tiny_corpus.array(domain, split)).tobytes())
    root = Path(__file__).resolve().parents[2] / "configs"
    keys = {
        "default": CorpusConfig().key(),
        "demo": load_config(root / "demo.yaml").corpus.key(),
        "smoke": load_config(root / "smoke.yaml").corpus.key(),
    }
    got = (tiny_corpus.fingerprint, h.hexdigest(), keys)
    assert got == (TINY_FINGERPRINT, TINY_TOKENS_SHA256, CONFIG_KEYS)
    assert CorpusConfig().vocab_size == 4096  # filled in, so saved configs name it
