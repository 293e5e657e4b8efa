import hashlib
import json
from pathlib import Path

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


#: Identity of the tiny corpus built with the trained BPE. Every finished run's id includes the
#: fingerprint, and the build folder's name the config key: if either moves, every existing
#: experiment trains its runs again.
TINY_BUILD_KEY = "0cd7e04d19c00fa5adae4e95fcb7d96534509cde4c2d0bb58462649588b108e6"
TINY_FINGERPRINT = "70dc23206384d14f"
TINY_TOKENS_SHA256 = "80e82f09da7b4878db06f7b36d174b661aea1a0d3cf3cbfc63b3a82b22600648"
CONFIG_KEYS = {"default": "821c6a404317", "demo": "6a4b590d2504", "smoke": "63e7ad62a831"}


def test_trained_tokenizer_build_keeps_its_identity(tiny_corpus):
    from configs.schema import CorpusConfig, load_config

    meta = json.loads((tiny_corpus.path / "tokens.json").read_text())
    assert (meta["build_key"], tiny_corpus.fingerprint) == (TINY_BUILD_KEY, TINY_FINGERPRINT)
    assert "tokenizer_sha256" not in meta
    h = hashlib.sha256()
    for domain in tiny_corpus.domains:
        for split in ("train", "val"):
            h.update((tiny_corpus.path / domain / f"{split}.bin").read_bytes())
    assert h.hexdigest() == TINY_TOKENS_SHA256
    root = Path(__file__).resolve().parents[2] / "configs"
    keys = {
        "default": CorpusConfig().key(),
        "demo": load_config(root / "demo.yaml").corpus.key(),
        "smoke": load_config(root / "smoke.yaml").corpus.key(),
    }
    assert keys == CONFIG_KEYS
    assert CorpusConfig().vocab_size == 4096  # filled in, so saved configs name it
