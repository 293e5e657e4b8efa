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


def test_source_counts_are_true_shares_when_domains_differ_100x(tmp_path):
    from proxies.documents import prepare_documents
    from proxies.planning import natural_mixture

    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
    texts = {}
    for name, n_docs in (("small", 20), ("big", 2000)):
        folder = tmp_path / "raw" / name
        folder.mkdir(parents=True)
        texts[name] = []
        for i in range(n_docs):
            text = f"{name} {i} " + " ".join(rng.choice(words, size=60))
            (folder / f"{i:05d}.txt").write_text(text)
            texts[name].append(text)
    dirs = {name: tmp_path / "raw" / name for name in texts}
    # the cap keeps all of `small` and about a tenth of `big`
    manifest = prepare_documents(
        dirs, tmp_path / "docs", cap_bytes=100_000, val_fraction=0.1, seed=0
    )
    corpus = build_token_arrays(
        tmp_path / "docs",
        tmp_path / "tokens",
        domains=sorted(dirs),
        docs_fingerprint=manifest.fingerprint,
        vocab_size=300,
        sample_bytes=50_000,
    )
    assert corpus.estimated() == {"big": True, "small": False}
    tok = corpus.tokenizer()
    true = {n: sum(len(e.ids) + 1 for e in tok.encode_batch(t)) for n, t in texts.items()}
    source = corpus.tokens("source")
    assert source["small"] == true["small"]  # tokenized whole: exact
    assert source["big"] > 5 * corpus.tokens("train")["big"]  # not the capped count
    natural = natural_mixture(source, ["big", "small"])
    share = true["big"] / (true["big"] + true["small"])
    assert abs(natural["big"] - share) < 0.01 * share


def test_old_counts_are_recomputed_without_retokenizing(tiny_corpus):
    import json

    meta_path = tiny_corpus.path / "tokens.json"
    meta = json.loads(meta_path.read_text())
    before = (tiny_corpus.path / "alpha" / "train.bin").stat().st_mtime_ns
    old = tiny_corpus.counts.filter(tiny_corpus.counts["split"] != "source")
    old.write_parquet(tiny_corpus.path / "counts.parquet")
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "counts_version"}))
    again = build_token_arrays(
        tiny_corpus.path.parent / "docs",
        tiny_corpus.path,
        domains=list(tiny_corpus.domains),
        docs_fingerprint=meta["docs_fingerprint"],
        vocab_size=300,
        sample_bytes=200_000,
    )
    assert again.fingerprint == tiny_corpus.fingerprint
    assert again.counts.equals(tiny_corpus.counts)
    assert (tiny_corpus.path / "alpha" / "train.bin").stat().st_mtime_ns == before
