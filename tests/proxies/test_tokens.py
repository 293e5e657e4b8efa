import numpy as np
import pytest

from mixtures.errors import DataError
from proxies.encode import build_token_arrays
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


def test_build_is_reused_when_key_matches(tiny_corpus, tmp_path):
    before = (tiny_corpus.path / "alpha" / "train.bin").stat().st_mtime_ns
    again = build_token_arrays(
        tiny_corpus.path.parent / "docs",
        tiny_corpus.path,
        domains=list(tiny_corpus.domains),
        docs_fingerprint=_docs_fp(tiny_corpus),
        vocab_size=300,
        sample_bytes=200_000,
    )
    assert again.fingerprint == tiny_corpus.fingerprint
    assert (tiny_corpus.path / "alpha" / "train.bin").stat().st_mtime_ns == before


def _docs_fp(corpus):
    import json

    return json.loads((corpus.path / "tokens.json").read_text())["docs_fingerprint"]


def test_errors_name_the_problem(tiny_corpus, tmp_path):
    with pytest.raises(DataError, match="unknown domain 'nope'"):
        tiny_corpus.array("nope", "train")
    with pytest.raises(DataError, match="missing tokens.json"):
        TokenCorpus.load(tmp_path)
    with pytest.raises(DataError, match="vocab_size"):
        build_token_arrays(
            tmp_path,
            tmp_path / "t",
            domains=["a"],
            docs_fingerprint="x",
            vocab_size=100,
            sample_bytes=10,
        )
