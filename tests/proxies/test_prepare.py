"""Preparing text domains into token files: dedup, the cap, the split, true counts, identity,
reuse, resume after a kill, worker processes, and the errors that name a bad domain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import proxies.prepare.build as build
from mixtures.errors import ConfigError, DataError
from proxies.prepare import MIN_DOC_CHARS, PrepOptions, TokenizerSpec, prepare_tokens
from proxies.tokens import TokenCorpus

REPO = Path(__file__).resolve().parents[2]
TOK = TokenizerSpec(vocab_size=300, sample_bytes=50_000)


def doc(tag: str, n: int = 3) -> str:
    """A document comfortably above the minimum length, unique per tag."""
    return " ".join(f"{tag} sentence number {i} of the test corpus." for i in range(n))


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def make_corpus(root: Path) -> dict[str, Path]:
    write_jsonl(
        root / "alpha" / "a.jsonl",
        [doc(f"alpha{i}") for i in range(20)] + [doc("alpha3"), doc("alpha4"), "tiny"],
    )
    write_jsonl(root / "beta" / "b.jsonl", [doc(f"beta{i}") for i in range(10)] + [doc("alpha0")])
    return {"alpha": root / "alpha", "beta": root / "beta"}


def many_files(root: Path, name: str, n: int) -> Path:
    """A domain of ``n`` small text files: one shard each at a tiny shard size."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{i:04d}.txt").write_text(doc(f"{name}{i}", 4))
    return folder


def documents(corpus: TokenCorpus, domain: str, split: str) -> list[str]:
    """The decoded documents of one split, cut at the EOS ids."""
    arr = np.asarray(corpus.array(domain, split)[np.arange(corpus.tokens(split)[domain])])
    tok = corpus.tokenizer()
    cuts = np.flatnonzero(arr == corpus.eos_id)
    starts = np.concatenate([[0], cuts[:-1] + 1])
    return [tok.decode(arr[a:b].tolist()) for a, b in zip(starts, cuts, strict=True)]


def all_tokens(corpus: TokenCorpus) -> dict[tuple[str, str], np.ndarray]:
    return {
        (d, s): np.asarray(corpus.array(d, s)[np.arange(corpus.tokens(s)[d])])
        for d in corpus.domains
        for s in ("train", "val")
    }


def test_dedups_splits_and_counts(tmp_path: Path) -> None:
    corpus = prepare_tokens(
        make_corpus(tmp_path / "raw"), tmp_path / "out", tokenizer=TOK, options=PrepOptions(0.2)
    )
    source = corpus.tokens("source")
    counts = {(r["domain"], r["split"]): r for r in corpus.counts.iter_rows(named=True)}
    assert counts["alpha", "source"]["documents"] == 20  # repeats and "tiny" dropped
    assert counts["beta", "source"]["documents"] == 10  # alpha0 belongs to alpha
    stats = json.loads((corpus.path / "tokens.json").read_text())["stats"]
    assert (stats["alpha"]["duplicates_removed"], stats["beta"]["duplicates_removed"]) == (2, 1)
    train, val = documents(corpus, "alpha", "train"), documents(corpus, "alpha", "val")
    assert train and val and not set(train) & set(val)
    assert sorted(train + val) == sorted(doc(f"alpha{i}") for i in range(20))
    assert all(len(t) >= MIN_DOC_CHARS for t in train)
    for d in corpus.domains:
        assert source[d] == corpus.tokens("train")[d] + corpus.tokens("val")[d]
        assert counts[d, "train"]["bytes"] == sum(
            len(t.encode()) for t in documents(corpus, d, "train")
        )
    assert not corpus.estimated()["alpha"]


def test_cap_limits_bytes_and_keeps_true_source_counts(tmp_path: Path) -> None:
    dirs = make_corpus(tmp_path / "raw")
    size = len(doc("alpha10").encode())
    cap = PrepOptions(0.2, cap_bytes=5 * size + 10)
    corpus = prepare_tokens(dirs, tmp_path / "out", tokenizer=TOK, options=cap)
    kept = documents(corpus, "alpha", "train") + documents(corpus, "alpha", "val")
    assert len(kept) == 5 and sum(len(t.encode()) for t in kept) <= 5 * size + 10
    assert len(documents(corpus, "alpha", "val")) >= 1
    assert json.loads((corpus.path / "tokens.json").read_text())["stats"]["alpha"]["truncated"]
    whole = prepare_tokens(dirs, tmp_path / "whole", tokenizer=TOK, options=PrepOptions(0.2))
    assert corpus.tokens("source") == whole.tokens("source")  # the cap never hides the size


def test_source_counts_are_true_shares_when_domains_differ_100x(tmp_path: Path) -> None:
    from proxies.planning import natural_mixture

    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
    texts: dict[str, list[str]] = {}
    for name, n_docs in (("small", 20), ("big", 2000)):
        folder = tmp_path / "raw" / name
        folder.mkdir(parents=True)
        texts[name] = []
        for i in range(n_docs):
            text = f"{name} {i} " + " ".join(rng.choice(words, size=60))
            (folder / f"{i:05d}.txt").write_text(text)
            texts[name].append(text)
    dirs = {name: tmp_path / "raw" / name for name in texts}
    options = PrepOptions(0.1, cap_bytes=100_000)  # all of `small`, a tenth of `big`
    corpus = prepare_tokens(dirs, tmp_path / "tokens", tokenizer=TOK, options=options)
    tok = corpus.tokenizer()
    true = {n: sum(len(e.ids) + 1 for e in tok.encode_batch(t)) for n, t in texts.items()}
    assert corpus.tokens("source") == true  # every document tokenized: exact
    assert true["big"] > 5 * corpus.tokens("train")["big"]
    natural = natural_mixture(corpus.tokens("source"), ["big", "small"])
    share = true["big"] / (true["big"] + true["small"])
    assert abs(natural["big"] - share) < 0.01 * share


def test_workers_and_shard_size_change_nothing_but_inputs_and_seed_do(tmp_path: Path) -> None:
    dirs = make_corpus(tmp_path / "raw")
    dirs["gamma"] = many_files(tmp_path / "raw", "gamma", 30)
    one = prepare_tokens(dirs, tmp_path / "o1", tokenizer=TOK, options=PrepOptions(0.2, seed=3))
    many = prepare_tokens(
        dirs,
        tmp_path / "o2",
        tokenizer=TOK,
        options=PrepOptions(0.2, seed=3, workers=2, shard_bytes=300),
    )
    assert len(json.loads((many.path / "shards.json").read_text())["domains"]["gamma"]["train"]) > 5
    assert many.fingerprint == one.fingerprint
    assert many.counts.equals(one.counts)
    a, b = all_tokens(one), all_tokens(many)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    other_seed = prepare_tokens(
        dirs, tmp_path / "o3", tokenizer=TOK, options=PrepOptions(0.2, seed=4)
    )
    assert other_seed.fingerprint != one.fingerprint
    write_jsonl(tmp_path / "raw" / "beta" / "c.jsonl", [doc("delta")])
    changed = prepare_tokens(dirs, tmp_path / "o1", tokenizer=TOK, options=PrepOptions(0.2, seed=3))
    assert changed.fingerprint != one.fingerprint


def _count_encodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []
    real = build.encode_shard

    def counting(job):
        calls.append((job.domain, job.index))
        return real(job)

    monkeypatch.setattr(build, "encode_shard", counting)
    return calls


def test_a_rerun_reuses_the_build_and_only_lost_shards_are_encoded(tmp_path, monkeypatch) -> None:
    dirs = {"a": many_files(tmp_path / "raw", "a", 6), "b": many_files(tmp_path / "raw", "b", 4)}
    options = PrepOptions(0.3, shard_bytes=200)
    first = prepare_tokens(dirs, tmp_path / "out", tokenizer=TOK, options=options)
    calls = _count_encodes(monkeypatch)
    again = prepare_tokens(dirs, tmp_path / "out", tokenizer=TOK, options=options)
    assert calls == [] and again.fingerprint == first.fingerprint
    (tmp_path / "out" / "tokens.json").unlink()  # as if killed while finishing
    lost = sorted((tmp_path / "out" / "shards" / "a").glob("00002-*.json"))
    assert len(lost) == 1
    lost[0].unlink()  # one shard's marker gone: only that shard is encoded again
    assert prepare_tokens(dirs, tmp_path / "out", tokenizer=TOK, options=options).fingerprint == (
        first.fingerprint
    )
    assert calls == [("a", 2)]


def test_sigkill_mid_preparation_resumes_at_its_shard(tmp_path: Path, monkeypatch) -> None:
    dirs = {"a": many_files(tmp_path / "raw", "a", 8), "b": many_files(tmp_path / "raw", "b", 3)}
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        import proxies.prepare.build as build
        from proxies.prepare import PrepOptions, TokenizerSpec, prepare_tokens
        real = build.encode_shard
        def dying(job):
            if (job.domain, job.index) == ("a", 5):
                os.kill(os.getpid(), signal.SIGKILL)
            return real(job)
        build.encode_shard = dying
        prepare_tokens({{"a": Path({str(dirs["a"])!r}), "b": Path({str(dirs["b"])!r})}},
                       Path({str(tmp_path / "out")!r}),
                       tokenizer=TokenizerSpec(vocab_size=300, sample_bytes=50_000),
                       options=PrepOptions(0.3, shard_bytes=200))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert not (tmp_path / "out" / "tokens.json").exists()
    calls = _count_encodes(monkeypatch)
    options = PrepOptions(0.3, shard_bytes=200)
    resumed = prepare_tokens(dirs, tmp_path / "out", tokenizer=TOK, options=options)
    assert calls == [("a", 5), ("a", 6), ("a", 7), ("b", 0), ("b", 1), ("b", 2)]
    fresh = prepare_tokens(dirs, tmp_path / "fresh", tokenizer=TOK, options=options)
    assert resumed.fingerprint == fresh.fingerprint
    leftovers = [p.name for p in (tmp_path / "out" / "shards").rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_too_few_usable_domains_lists_failures_and_keeps_finished_shards(tmp_path) -> None:
    dirs = make_corpus(tmp_path / "raw")
    (tmp_path / "raw" / "empty").mkdir()
    dirs["empty"] = tmp_path / "raw" / "empty"
    dirs["gone"] = tmp_path / "raw" / "gone"
    with pytest.raises(
        DataError,
        match=r"only 2 usable.*need 3.*empty: .*no supported.*gone: .*does not exist",
    ):
        prepare_tokens(
            dirs, tmp_path / "out", tokenizer=TOK, options=PrepOptions(0.2), min_domains=3
        )
    assert not (tmp_path / "out" / "tokens.json").exists()
    ok = prepare_tokens(
        dirs, tmp_path / "out", tokenizer=TOK, options=PrepOptions(0.2), min_domains=2
    )
    assert ok.domains == ("alpha", "beta")


def test_every_named_domain_must_be_usable_and_a_bad_file_is_named(tmp_path, monkeypatch) -> None:
    dirs = make_corpus(tmp_path / "raw")
    dirs["gamma"] = many_files(tmp_path / "raw", "gamma", 5)
    (dirs["gamma"] / "0003.txt").write_bytes(doc("bad", 4).encode() + b"\xff")  # own shard
    options = PrepOptions(0.2, shard_bytes=200)
    given = TokenizerSpec(path=_saved_tokenizer(tmp_path))  # no sample: the bad file is met
    with pytest.raises(DataError, match=r"need all; failed: gamma: .*0003\.txt: not valid UTF-8"):
        prepare_tokens(dirs, tmp_path / "out", tokenizer=given, options=options)
    (dirs["gamma"] / "0003.txt").write_text(doc("fixed", 4))
    calls = _count_encodes(monkeypatch)
    prepare_tokens(dirs, tmp_path / "out", tokenizer=given, options=options)
    assert calls == [("gamma", 3)]  # nothing else was lost


def test_a_bad_file_in_the_tokenizer_sample_fails_before_any_encoding(tmp_path, monkeypatch):
    dirs = make_corpus(tmp_path / "raw")
    (dirs["beta"] / "b.jsonl").write_bytes(b'{"text": "bad \xff byte"}\n')
    calls = _count_encodes(monkeypatch)
    with pytest.raises(DataError, match=r"need all; failed: beta: .*b\.jsonl:1: not valid UTF-8"):
        prepare_tokens(dirs, tmp_path / "out", tokenizer=TOK, options=PrepOptions(0.2))
    assert calls == []


def _saved_tokenizer(root: Path) -> Path:
    from proxies.tokenizer import train_tokenizer

    path = root / "given.json"
    train_tokenizer([doc(f"t{i}") for i in range(50)], vocab_size=300).save(str(path))
    return path


def test_a_domain_too_small_after_dedup_is_named(tmp_path: Path) -> None:
    dirs = make_corpus(tmp_path / "raw")
    write_jsonl(tmp_path / "raw" / "copy" / "c.jsonl", [doc("beta1"), doc("beta2")])
    dirs["copy"] = tmp_path / "raw" / "copy"
    with pytest.raises(DataError, match=r"copy: domain copy: 0 document\(s\) left"):
        prepare_tokens(dirs, tmp_path / "out", tokenizer=TOK, options=PrepOptions(0.2))


@pytest.mark.parametrize("name", ["Alpha", "with-dash", "", "a b", "nl\n"])
def test_bad_domain_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="domain name"):
        prepare_tokens(
            {name: tmp_path, "ok": tmp_path}, tmp_path / "o", tokenizer=TOK, options=PrepOptions()
        )


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="val_fraction must be in"):
        prepare_tokens({"a": tmp_path}, tmp_path, tokenizer=TOK, options=PrepOptions(1.0))
    with pytest.raises(ConfigError, match="cap_bytes must be > 0, got 0"):
        prepare_tokens({"a": tmp_path}, tmp_path, tokenizer=TOK, options=PrepOptions(cap_bytes=0))
