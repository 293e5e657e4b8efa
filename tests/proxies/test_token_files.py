"""Your token files used in place (``corpus.source: tokens``): formats, shards, splits, counts,
fingerprints, and every kind of bad input named with its file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from configs.schema import CorpusConfig, parse_config
from mixtures.errors import ConfigError, DataError
from proxies import shard_files
from proxies.batches import MixtureBatcher, eval_windows
from proxies.shards import ShardedTokens, ShardPiece
from proxies.token_files import TokenDomainFiles, TokenSourceSpec, build_token_files
from proxies.tokenizer import train_tokenizer
from proxies.tokens import TokenCorpus

VOCAB, EOS = 512, 511


def tokens(n: int, seed: int, *, eos_every: int = 40) -> np.ndarray:
    """``n`` ids below ``EOS`` with an EOS every ``eos_every`` tokens."""
    ids = np.random.default_rng(seed).integers(0, EOS, n)
    ids[eos_every - 1 :: eos_every] = EOS
    return ids


def write_bin(path: Path, ids: np.ndarray, dtype: str = "uint16") -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(ids, dtype=dtype)
    arr.tofile(path)
    return arr


def write_npy(path: Path, ids: np.ndarray, dtype: str = "uint32") -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(ids, dtype=dtype)
    np.save(path, arr)
    return arr


def spec(domains: dict, **kw) -> TokenSourceSpec:
    options = {"vocab_size": VOCAB, "eos_id": EOS, "token_dtype": "uint16", "val_fraction": 0.1}
    options.update(kw)
    files = {d: TokenDomainFiles(**v) for d, v in domains.items()}
    return TokenSourceSpec(domains=files, **options)


def build(tmp_path: Path, domains: dict, out: str = "out", **kw) -> TokenCorpus:
    return build_token_files(spec(domains, **kw), tmp_path / out, scan_cache=tmp_path / "scans")


def pieces_of(arrays: list[np.ndarray], tmp_path: Path) -> list[ShardPiece]:
    out = []
    for i, arr in enumerate(arrays):
        path = tmp_path / f"p{i}.bin"
        arr.tofile(path)
        n = len(arr)
        out.append(ShardPiece(str(path), arr.dtype.str, 0, 0, n, path.stat().st_size))
    return out


# -- the sharded view -----------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=2, max_size=6),
    seed=st.integers(0, 2**16),
    window=st.integers(1, 30),
)
def test_sharded_view_equals_the_concatenation(tmp_path_factory, lengths, seed, window):
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 60_000, n).astype(np.uint16) for n in lengths]
    whole = np.concatenate(arrays)
    view = ShardedTokens(pieces_of(arrays, tmp_path_factory.mktemp("view")))
    assert len(view) == len(whole) and view.dtype == np.uint16
    window = min(window, len(whole))
    starts = rng.integers(0, len(whole) - window + 1, size=7)
    idx = starts[:, None] + np.arange(window)  # (7, window), crossing shard boundaries
    assert np.array_equal(view[idx], whole[idx])
    assert np.array_equal(view[idx - len(whole)], whole[idx])  # the same windows, from the end
    flat = rng.integers(-len(whole), len(whole), size=(3, 2, 5))
    assert np.array_equal(view[flat], whole[flat])
    assert view[len(whole) - 1] == whole[-1] and view[-len(whole)] == whole[0]
    assert np.array_equal(view[2:-1:3], whole[2:-1:3])
    assert np.array_equal(np.asarray(view), whole)
    with pytest.raises(IndexError, match="out of bounds"):
        view[np.array([0, len(whole)])]


def test_batcher_and_eval_windows_read_the_view_like_the_array(tmp_path):
    arrays = [tokens(n, seed).astype(np.uint16) for seed, n in enumerate([50, 7, 90, 33])]
    whole = np.concatenate(arrays)
    view = ShardedTokens(pieces_of(arrays, tmp_path))
    batches = []
    for arr in (whole, view):
        rng = np.random.default_rng(3)
        batcher = MixtureBatcher([arr], np.array([1.0]), seq_len=16, batch_size=32, rng=rng)
        batches.append([batcher.next() for _ in range(4)])
    assert all((a == b).all() for a, b in zip(*batches, strict=True))
    for layout in ("spread", "head"):
        got = eval_windows(view, seq_len=16, max_tokens=120, layout=layout)
        assert (got == eval_windows(whole, seq_len=16, max_tokens=120, layout=layout)).all()


def test_the_view_keeps_a_bounded_number_of_files_open(tmp_path, monkeypatch):
    monkeypatch.setattr("proxies.shards.MAX_OPEN_SHARDS", 3)
    arrays = [np.full(4, i, dtype=np.uint16) for i in range(10)]
    view = ShardedTokens(pieces_of(arrays, tmp_path))
    assert np.array_equal(view[np.arange(40)], np.repeat(np.arange(10), 4))
    assert len(view._open) == 3


# -- formats, shards and splits -------------------------------------------------------------


def test_each_format_is_read_in_place(tmp_path):
    a = write_bin(tmp_path / "a.bin", tokens(400, 0))
    b = write_bin(tmp_path / "b.bin", tokens(300, 1), "uint32")
    c = write_npy(tmp_path / "c.npy", tokens(500, 2), "uint32")
    d = write_bin(tmp_path / "d.npy", tokens(200, 3))  # OLMo: headerless, named .npy
    e = write_npy(tmp_path / "e.npy", tokens(240, 4).reshape(12, 20), "int32")  # C-order 2-D
    domains = {
        name: {"train": [str(tmp_path / f"{name}.{'bin' if name < 'c' else 'npy'}")]}
        for name in "abcde"
    }
    domains["b"]["dtype"] = "uint32"  # a domain's own dtype for its flat files
    corpus = build(tmp_path, domains)
    for name, data in zip("abcde", (a, b, c, d, e), strict=True):
        train, val = corpus.array(name, "train"), corpus.array(name, "val")
        assert isinstance(train, np.memmap) and train.dtype == data.dtype
        assert np.array_equal(np.concatenate([train, val]), data.reshape(-1))
        assert len(val) == int(np.ceil(data.size * 0.1))
    assert Path(corpus.array("c", "train").filename) == tmp_path / "c.npy"  # no copy
    assert sorted(p.name for p in corpus.path.iterdir()) == [
        "counts.parquet",
        "shards.json",
        "tokens.json",
    ]
    assert corpus.dtype == np.dtype("int64")  # wide enough for every domain's dtype


def test_many_shards_with_val_shards_and_val_fraction(tmp_path):
    code = [
        write_bin(tmp_path / "code" / f"s{i:02d}.bin", tokens(n, i))
        for i, n in enumerate([90, 40, 70])
    ]
    code_val = write_bin(tmp_path / "code_val" / "v.bin", tokens(60, 9))
    books = [write_npy(tmp_path / "books" / f"b{i}.npy", tokens(100, 20 + i)) for i in range(4)]
    write_npy(tmp_path / "books" / "_skipped.npy", tokens(10, 5))  # a folder's hidden names
    (tmp_path / "books" / "notes.txt").write_text("not tokens")
    corpus = build(
        tmp_path,
        {
            "code": {
                "train": [str(tmp_path / "code" / "*.bin")],
                "val": [str(tmp_path / "code_val")],
            },
            "books": {"train": [str(tmp_path / "books")]},
        },
        val_fraction=0.25,
    )
    code_train = corpus.array("code", "train")
    assert isinstance(code_train, ShardedTokens)
    assert np.array_equal(np.asarray(code_train), np.concatenate(code))
    assert np.array_equal(corpus.array("code", "val"), code_val)
    whole_books = np.concatenate(books)
    books_train, books_val = corpus.array("books", "train"), corpus.array("books", "val")
    assert len(books_val) == 100 and np.array_equal(np.asarray(books_val), whole_books[300:])
    idx = np.arange(280, 300)[None, :] + np.arange(0, 40, 7)[:, None] - 20  # crosses b2 -> b3
    assert np.array_equal(books_train[np.clip(idx, 0, 299)], whole_books[np.clip(idx, 0, 299)])
    counts = {(r["domain"], r["split"]): r for r in corpus.counts.iter_rows(named=True)}
    assert counts["books", "train"]["tokens"] == 300 and counts["books", "val"]["tokens"] == 100
    for domain, data in (("code", [*code, code_val]), ("books", books)):
        src = counts[domain, "source"]
        train, val = counts[domain, "train"], counts[domain, "val"]
        assert src["tokens"] == train["tokens"] + val["tokens"] == sum(map(len, data))
        assert src["documents"] == sum(int((x == EOS).sum()) for x in data)
        assert src["documents"] == train["documents"] + val["documents"]
        assert not src["estimated"]
    assert counts["books", "val"]["documents"] == int((whole_books[300:] == EOS).sum())
    assert corpus.tokens("source") == {"books": 400, "code": 260}
    shards = json.loads((corpus.path / "shards.json").read_text())["domains"]
    assert [Path(p["path"]).name for p in shards["code"]["train"]] == [
        "s00.bin",
        "s01.bin",
        "s02.bin",
    ]


def test_build_is_reused_and_scans_are_cached(tmp_path, monkeypatch):
    write_bin(tmp_path / "a" / "0.bin", tokens(300, 0))
    write_bin(tmp_path / "a" / "1.bin", tokens(300, 1))
    domains = {"a": {"train": [str(tmp_path / "a")]}}
    first = build(tmp_path, domains)
    stamp = (first.path / "tokens.json").stat().st_mtime_ns
    assert build(tmp_path, domains).fingerprint == first.fingerprint
    assert (first.path / "tokens.json").stat().st_mtime_ns == stamp  # nothing rebuilt

    def no_scan(*args, **kwargs):
        raise AssertionError("a cached file was read again")

    monkeypatch.setattr(shard_files, "_content_sample", no_scan)
    other = build(tmp_path, domains, val_fraction=0.2)  # a new split, from the cached scans
    assert other.fingerprint != first.fingerprint
    write_bin(tmp_path / "a" / "2.bin", tokens(50, 2))
    with pytest.raises(AssertionError, match="read again"):  # only the new file is scanned
        build(tmp_path, domains)


def test_fingerprint_follows_content_and_settings_not_location(tmp_path):
    data = tokens(500, 0)
    write_bin(tmp_path / "here" / "s.bin", data)
    write_bin(tmp_path / "there" / "s.bin", data)
    fp = build(tmp_path, {"a": {"train": [str(tmp_path / "here")]}}, "o1").fingerprint
    moved = build(tmp_path, {"a": {"train": [str(tmp_path / "there")]}}, "o2").fingerprint
    assert moved == fp
    variants = [
        build(tmp_path, {"a": {"train": [str(tmp_path / "here")]}}, "o3", val_fraction=0.2),
        build(tmp_path, {"a": {"train": [str(tmp_path / "here")]}}, "o4", vocab_size=600),
        build(tmp_path, {"a": {"train": [str(tmp_path / "here")]}}, "o5", eos_id=0),
        build(tmp_path, {"b": {"train": [str(tmp_path / "here")]}}, "o6"),
    ]
    assert len({fp, *(c.fingerprint for c in variants)}) == 5
    changed = data.copy()
    changed[-1] = 7
    write_bin(tmp_path / "there" / "s.bin", changed)
    assert build(tmp_path, {"a": {"train": [str(tmp_path / "there")]}}, "o2").fingerprint != fp


def test_a_tokenizer_decodes_and_enters_the_fingerprint(tmp_path):
    tok = train_tokenizer(["alpha beta gamma delta"] * 30, vocab_size=300)
    tok.save(str(tmp_path / "tok.json"))
    n, eos = tok.get_vocab_size(), tok.token_to_id("<|endoftext|>")
    ids = np.array(tok.encode("alpha beta gamma").ids + [eos] * 30, dtype=np.uint16)
    write_bin(tmp_path / "a.bin", ids)
    domains = {"a": {"train": [str(tmp_path / "a.bin")]}}
    plain = build(tmp_path, domains, "o1", vocab_size=n, eos_id=eos)
    with_tok = build(
        tmp_path, domains, "o2", vocab_size=None, eos_id=None, tokenizer=tmp_path / "tok.json"
    )
    assert (with_tok.vocab_size, with_tok.eos_id) == (n, eos)
    assert with_tok.fingerprint != plain.fingerprint
    assert with_tok.tokenizer().decode(with_tok.array("a", "train")[:3].tolist()) == (
        "alpha beta gamma"
    )
    with pytest.raises(DataError, match="has no tokenizer; set corpus.tokenizer"):
        plain.tokenizer()


# -- bad input ------------------------------------------------------------------------------


def test_bad_files_are_named_and_nothing_prepared_is_lost(tmp_path):
    write_bin(tmp_path / "good" / "0.bin", tokens(300, 0))
    domains = {"a": {"train": [str(tmp_path / "good")]}}
    corpus = build(tmp_path, domains)
    before = {p.name: p.read_bytes() for p in corpus.path.iterdir()}
    bad = write_bin(tmp_path / "good" / "1.bin", tokens(300, 1))
    bad[5] = VOCAB + 3
    bad.tofile(tmp_path / "good" / "1.bin")
    with pytest.raises(DataError, match=rf"{tmp_path / 'good' / '1.bin'} holds the token id 515"):
        build(tmp_path, domains)
    assert {p.name: p.read_bytes() for p in corpus.path.iterdir()} == before
    assert TokenCorpus.load(corpus.path).fingerprint == corpus.fingerprint


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("id_at_vocab", r"x\.bin holds the token id 512, at or above the vocabulary of 512"),
        ("negative", r"x\.bin holds the negative token id -4"),
        ("odd_size", r"x\.bin has 601 bytes, not a multiple of 2 \(uint16\)"),
        ("empty", r"x\.bin holds no tokens \(empty shard\)"),
        ("mixed", r"corpus.token_domains.a: files of one domain must share a dtype"),
        ("pattern", r"corpus.token_domains.a.train\[0\]: pattern .* matches no \.bin or \.npy"),
        ("empty_folder", r"corpus.token_domains.a.train\[0\]: folder .* holds no \.bin or \.npy"),
        ("missing", r"corpus.token_domains.a.train\[0\]: .*nowhere does not exist"),
        ("twice", r"corpus.token_domains.a.val: .*x\.bin is already listed in .*a.train"),
        ("suffix", r"x\.txt is not a \.bin or \.npy token file"),
        ("no_dtype", r"x\.bin has no header; set corpus.token_dtype"),
        ("float_npy", r"x\.npy: dtype float32 is not an integer dtype"),
        ("too_small", r"corpus.token_domains.a: 1 tokens are too few"),
    ],
)
def test_bad_input_is_named(tmp_path, setup, message):
    x = tmp_path / "x.bin"
    entry, kw = str(x), {}
    ids = tokens(300, 0)
    if setup == "id_at_vocab":
        ids[17] = VOCAB
        write_bin(x, ids)
    elif setup == "negative":
        ids[3] = -4
        write_bin(x, ids, "int32")
        kw["token_dtype"] = "int32"
    elif setup == "odd_size":
        x.write_bytes(b"\x01" * 601)
    elif setup == "empty":
        x.write_bytes(b"")
    elif setup == "mixed":
        write_bin(tmp_path / "d" / "a.bin", ids)
        write_npy(tmp_path / "d" / "b.npy", ids, "uint32")
        entry = str(tmp_path / "d")
    elif setup == "pattern":
        entry = str(tmp_path / "*.bin")
    elif setup == "empty_folder":
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "readme.md").write_text("no tokens")
        entry = str(tmp_path / "d")
    elif setup == "missing":
        entry = str(tmp_path / "nowhere")
    elif setup == "twice":
        write_bin(x, ids)
        kw["domains_val"] = [str(x)]
    elif setup == "suffix":
        (tmp_path / "x.txt").write_text("1 2 3")
        entry = str(tmp_path / "x.txt")
    elif setup == "no_dtype":
        write_bin(x, ids)
        kw["token_dtype"] = None
    elif setup == "float_npy":
        np.save(tmp_path / "x.npy", ids.astype(np.float32))
        entry = str(tmp_path / "x.npy")
    elif setup == "too_small":
        write_bin(x, ids[:1])
    val = kw.pop("domains_val", [])
    with pytest.raises(DataError, match=message):
        build(tmp_path, {"a": {"train": [entry], "val": val}}, **kw)
    assert not (tmp_path / "out" / "tokens.json").exists()


def test_vocabulary_mismatch_with_the_tokenizer_is_named(tmp_path):
    tok = train_tokenizer(["alpha beta gamma delta"] * 30, vocab_size=300)
    tok.save(str(tmp_path / "tok.json"))
    n = tok.get_vocab_size()
    ids = tokens(300, 0) % n
    ids[40] = n + 1  # below vocab_size 512, above the tokenizer's
    write_bin(tmp_path / "a.bin", ids)
    domains = {"a": {"train": [str(tmp_path / "a.bin")]}}
    with pytest.raises(DataError, match=f"corpus.vocab_size is 512 but tokenizer .* has {n}"):
        build(tmp_path, domains, tokenizer=tmp_path / "tok.json")
    with pytest.raises(DataError, match=rf"token id {n + 1}, at or above the vocabulary of {n}"):
        build(tmp_path, domains, vocab_size=None, eos_id=0, tokenizer=tmp_path / "tok.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DataError, match="broken.json does not load as a tokenizer"):
        build(tmp_path, domains, tokenizer=tmp_path / "broken.json")


def test_a_file_changed_after_preparing_is_named_when_loaded(tmp_path):
    write_bin(tmp_path / "a.bin", tokens(300, 0))
    corpus = build(tmp_path, {"a": {"train": [str(tmp_path / "a.bin")]}})
    write_bin(tmp_path / "a.bin", tokens(200, 0))
    with pytest.raises(DataError, match=r"a\.bin had 600 bytes .* now it has 400 bytes"):
        TokenCorpus.load(corpus.path)
    os.remove(tmp_path / "a.bin")
    with pytest.raises(DataError, match=r"a\.bin had 600 bytes .* now it is missing"):
        TokenCorpus.load(corpus.path)


# -- the config -----------------------------------------------------------------------------


def _tokens_config(**corpus) -> dict:
    base = {
        "source": "tokens",
        "vocab_size": 50304,
        "eos_id": 50256,
        "token_dtype": "uint16",
        "token_domains": {"code": {"train": ["/data/code/*.bin"], "val": ["/data/val/"]}},
    }
    return {"name": "t", "target": {"kind": "domain", "domain": "code"}, "corpus": base | corpus}


def test_config_of_token_files_and_its_errors():
    config = parse_config(_tokens_config())
    assert config.corpus.token_domains["code"].val == ["/data/val/"]
    assert config.corpus.vocab_size == 50304  # no trained default for token files
    cases = [
        ({"token_domains": {}}, "`token_domains` is empty"),
        ({"token_domains": {"Code!": {"train": ["x"]}}}, "domain name 'Code!' must match"),
        ({"token_domains": {"code": {"train": []}}}, "corpus.token_domains.code.train"),
        ({"token_domains": {"code": {"train": ["x"], "test": ["y"]}}}, "code.test"),
        ({"eos_id": 50304}, "eos_id 50304 must be below vocab_size 50304"),
        ({"vocab_size": None}, "source 'tokens' needs `vocab_size`"),
        ({"token_dtype": "float16"}, "corpus.token_dtype"),
        ({"folders": {"code": "/x"}}, "`folders` applies to source 'folders'"),
        ({"eos_token": "</s>"}, "`eos_token` names a token of `tokenizer`"),
    ]
    for change, message in cases:
        with pytest.raises(ConfigError, match=message):
            parse_config(_tokens_config(**change))
    with pytest.raises(ConfigError, match="`token_domains` applies to source 'tokens'"):
        parse_config(_tokens_config(source="folders", folders={"code": "/x"}))
    with pytest.raises(ConfigError, match=r"vocab_size of the trained BPE must be in \(256"):
        parse_config(_tokens_config(source="smoke", vocab_size=100_000, token_domains={},
                                    eos_id=None, token_dtype=None))  # fmt: skip


def test_config_with_a_tokenizer_leaves_the_vocabulary_to_it(tmp_path):
    c = CorpusConfig(source="folders", folders={"a": tmp_path}, tokenizer=tmp_path / "t.json")
    assert c.vocab_size is None
    assert c.key() != CorpusConfig(source="folders", folders={"a": tmp_path}).key()
    tokens_config = parse_config(
        _tokens_config(vocab_size=None, eos_id=None, tokenizer=str(tmp_path))
    )
    assert tokens_config.corpus.vocab_size is None


def test_token_source_takes_the_chosen_domains():
    from tasks.corpus import token_source

    two = {"a": {"train": ["x"]}, "b": {"train": ["y"]}}
    config = parse_config(_tokens_config(token_domains=two, domains=["b"]))
    assert list(token_source(config.corpus).domains) == ["b"]
    config = parse_config(_tokens_config(token_domains=two, domains=["c"]))
    with pytest.raises(ConfigError, match=r"corpus.domains names \['c'\]"):
        token_source(config.corpus)


# -- end to end -----------------------------------------------------------------------------


ROOT = Path(__file__).resolve().parents[2]


def _mixopt(tmp_path: Path, command: str, sets: list[str]):
    import subprocess
    import sys

    args = [command, "--config", str(ROOT / "configs/smoke.yaml")]
    if command == "sweep":
        args += ["--experiment-dir", str(tmp_path / "exp")]
    for item in sets:
        args += ["--set", item]
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"))
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _token_sets(tmp_path: Path, domains: str) -> list[str]:
    return [
        "corpus.source=tokens",
        "corpus.cap_mb=null",  # the smoke config's cap is for text
        f"corpus.token_domains={domains}",
        f"corpus.vocab_size={VOCAB}",
        f"corpus.eos_id={EOS}",
        "corpus.token_dtype=uint16",
        f"corpus.cache_dir={tmp_path / 'corpus'}",
        "target.domain=gamma",
    ]


@pytest.mark.slow
def test_sweep_through_the_cli_on_bin_and_npy_shards(tmp_path):
    import polars as pl

    data = tmp_path / "data"
    for i in range(3):
        write_bin(data / "alpha" / f"{i:03d}.bin", tokens(6000, i, eos_every=64))
    for i in range(2):
        write_npy(data / "beta" / f"part-{i}.npy", (tokens(8000, 10 + i) * 3) % EOS)
    write_bin(data / "gamma" / "train.bin", tokens(9000, 20, eos_every=30))
    write_bin(data / "gamma_val" / "val.bin", tokens(3000, 21, eos_every=30))
    domains = (
        f"{{alpha: {{train: ['{data}/alpha/*.bin']}}, beta: {{train: ['{data}/beta']}}, "
        f"gamma: {{train: ['{data}/gamma'], val: ['{data}/gamma_val']}}}}"
    )
    # random ids: no model beats a uniform guess by much, so allow runs to end near it
    sets = [*_token_sets(tmp_path, domains), "sweep.n_runs=2", "proxy.train_tokens=2048"]
    sets.append("proxy.final_loss_ratio=1.1")
    out = _mixopt(tmp_path, "sweep", sets)
    assert out.returncode == 0, out.stderr[-3000:]
    meta = pl.read_parquet(tmp_path / "exp" / "runs_meta.parquet")
    assert len(meta) == 4 and set(meta["status"]) == {"ok"}  # 2 sampled + 2 baselines
    (build,) = (tmp_path / "corpus").glob("tokens-*/tokens")
    assert sorted(p.name for p in build.iterdir()) == [
        "counts.parquet",
        "shards.json",
        "tokens.json",
    ]
    plan = json.loads((tmp_path / "exp" / "plan.json").read_text())
    assert plan["tokens"] == {"alpha": 18000, "beta": 16000}  # whole sources, exact


@pytest.mark.slow
def test_a_bad_token_file_through_the_cli_is_named_with_exit_2(tmp_path):
    ids = tokens(3000, 0)
    ids[100] = VOCAB + 1
    write_bin(tmp_path / "data" / "bad.bin", ids)
    path = tmp_path / "data" / "bad.bin"
    # two training domains and the held-out gamma: the corpus is valid but for the bad id
    domains = (
        f"{{alpha: {{train: ['{path}']}}, beta: {{train: ['{path}']}}, "
        f"gamma: {{train: ['{path}']}}}}"
    )
    out = _mixopt(tmp_path, "prepare-corpus", _token_sets(tmp_path, domains))
    assert out.returncode == 2, out.stderr[-3000:]
    # the last line is mixopt's message (Prefect's log of the failed task comes before it)
    assert f"{path} holds the token id {VOCAB + 1}" in out.stderr.strip().splitlines()[-1]
