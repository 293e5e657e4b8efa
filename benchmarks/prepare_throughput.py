"""Preparation of real text at GB scale: throughput and peak memory of ``proxies.prepare``
against a plain ``tokenizers`` ``encode_batch`` loop over the same files.

The text is real source code and documentation from Debian source packages (``linux-source-6.1``
for a ~1 GB domain; for a ~3 GB one the GCC 11 and 12, glibc, binutils, GDB, Linux, Free
Pascal and ACL2 sources, and the arm-none-eabi GCC sources, which repeat much of GCC 12), gathered
once into JSON Lines files of 128 MB, one source file per line (the way teams keep text). The
smoke variant gathers the venv's own ``.py`` files instead.

Each measurement runs in a fresh subprocess. Its peak memory is the largest sum, sampled every
0.2 s, of the resident sets of the process and all of its descendants (the worker processes
included). Throughput is input MB (the JSON Lines files on disk) per second of wall time. Both
sides encode with the same tokenizer, one thread per process; the baseline reads, parses and
encodes only, the preparation also cleans, splits, deduplicates, writes and indexes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from benchmarks.suite import ROOT, Case, Column, Params, col, one_table

#: Debian source tarballs and source folders per benchmark domain, from ``apt-get install
#: linux-source-6.1 gcc-12-source gcc-11-source glibc-source binutils-source gdb-source
#: fpc-source-3.2.2 acl2-books-source gcc-arm-none-eabi-source``.
DEBIAN_TARBALLS = {
    "kernel_part": ["/usr/src/linux-source-*.tar.*"],
    "kernel": ["/usr/src/linux-source-*.tar.*"],
    "systems": [
        "/usr/src/gcc-12/gcc-*.tar.*",
        "/usr/src/gcc-11/gcc-*.tar.*",
        "/usr/src/glibc/glibc-*.tar.*",
        "/usr/src/binutils/binutils-*.tar.*",
        "/usr/src/gdb.tar.*",
        "/usr/src/linux-source-*.tar.*",
        "/usr/share/fpcsrc",
        "/usr/share/acl2-*/books",
        "/usr/src/gcc-arm-none-eabi-source.tar.*",
    ],
}
PART_BYTES = 128_000_000
MAX_FILE_BYTES = 1_000_000


class PrepareParams(Params):
    """Text preparation vs a plain encode_batch loop, 1 and 2 processes: MB/s and peak RSS."""

    smoke: ClassVar[Mapping[str, Any]] = {
        "text_from": "venv",
        "sizes_mb": {"small": 2, "larger": 6},
        "vocab": 512,
        "runs": [["small", "baseline"], ["small", "prepare", 1], ["larger", "prepare", 2]],
    }

    text_from: str = Field("debian", pattern="^(debian|venv)$")
    data_dir: str = "runs/_bench_text"
    sizes_mb: dict[str, float] = {"kernel_part": 250}
    vocab: int = Field(4096, gt=256)
    sample_mb: float = 8.0
    runs: list[list[Any]] = [
        ["kernel_part", "baseline"],
        ["kernel_part", "prepare", 1],
        ["kernel_part", "prepare", 2],
    ]
    """[domain, "baseline" | "prepare", processes]: the baseline is one process."""


class ScaleParams(PrepareParams):
    """Preparation of 0.25, 1 and 3 GB of real text with 2 processes: peak RSS and MB/s."""

    sizes_mb: dict[str, float] = {"kernel_part": 250, "kernel": 1000, "systems": 3000}
    runs: list[list[Any]] = [
        ["kernel_part", "prepare", 2],
        ["kernel", "prepare", 2],
        ["systems", "prepare", 2],
    ]


def run(p: PrepareParams, work: Path) -> list[dict[str, Any]]:
    data = ROOT / p.data_dir
    folders = {name: gather(p, name, data / name) for name in p.sizes_mb}
    tokenizer = work / "tokenizer.json"
    _train_tokenizer(folders, p, tokenizer)
    rows = []
    for spec in p.runs:
        domain, kind = spec[0], spec[1]
        workers = int(spec[2]) if len(spec) > 2 else 1
        out = work / f"out-{domain}-{kind}-{workers}"
        args = [str(folders[domain]), str(tokenizer), kind, str(workers), str(out)]
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.prepare_throughput", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{domain} {kind} failed: {proc.stderr[-3000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        shutil.rmtree(out, ignore_errors=True)
        rows.append({"domain": domain, "kind": kind, "workers": workers, **row})
        print(rows[-1], flush=True)
    base = {r["domain"]: r["mb_per_s"] for r in rows if r["kind"] == "baseline"}
    for r in rows:
        ref = base.get(r["domain"]) or next(iter(base.values()), None)
        r["vs_baseline"] = r["mb_per_s"] / ref if ref else None
    return rows


def gather(p: PrepareParams, name: str, folder: Path) -> Path:
    """JSON Lines files of about ``sizes_mb[name]`` MB of real text (built once, then reused)."""
    done = folder / "_DONE.json"
    target = int(p.sizes_mb[name] * 1_000_000)
    if done.is_file() and json.loads(done.read_text())["target"] == target:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    texts = _venv_texts() if p.text_from == "venv" else _tarball_texts(DEBIAN_TARBALLS[name])
    written, part, fh = 0, 0, None
    for text in texts:
        if fh is None or fh.tell() >= PART_BYTES:
            if fh is not None:
                fh.close()
            fh = open(folder / f"part-{part:04d}.jsonl", "w", encoding="utf-8")  # noqa: SIM115
            part += 1
        line = json.dumps({"text": text}) + "\n"
        fh.write(line)
        written += len(line.encode("utf-8"))
        if written >= target:
            break
    if fh is not None:
        fh.close()
    if written < target:
        raise RuntimeError(
            f"{name}: only {written / 1e6:.0f} MB of text found, {target / 1e6:.0f} MB wanted "
            "(install the Debian source packages named in benchmarks/prepare_throughput.py)"
        )
    done.write_text(json.dumps({"target": target, "bytes": written, "parts": part}))
    return folder


def _tarball_texts(patterns: list[str]) -> Iterator[str]:
    import glob

    paths = sorted(p for pattern in patterns for p in glob.glob(pattern))
    if not paths:
        raise RuntimeError(f"none of {patterns} exists: apt-get install the source packages")
    for path in paths:
        if Path(path).is_dir():
            yield from _folder_texts(Path(path))
            continue
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile() or not 64 <= member.size <= MAX_FILE_BYTES:
                    continue
                fh = tar.extractfile(member)
                text = _text(fh.read()) if fh is not None else None
                if text is not None:
                    yield text


def _folder_texts(root: Path) -> Iterator[str]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and 64 <= path.stat().st_size <= MAX_FILE_BYTES:
            text = _text(path.read_bytes())
            if text is not None:
                yield text


def _venv_texts() -> Iterator[str]:
    yield from _folder_texts(Path(sys.prefix) / "lib")


def _text(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _train_tokenizer(folders: Mapping[str, Path], p: PrepareParams, path: Path) -> None:
    """One BPE for every measurement, trained on an equal share of each benchmark domain."""
    from proxies.tokenizer import train_tokenizer

    share = int(p.sample_mb * 1_000_000 / len(folders))
    texts: list[str] = []
    for folder in folders.values():
        used = 0
        with open(sorted(folder.glob("*.jsonl"))[0], encoding="utf-8") as fh:
            for line in fh:
                texts.append(json.loads(line)["text"])
                used += len(line)
                if used >= share:
                    break
    train_tokenizer(texts, vocab_size=p.vocab).save(str(path))


def measure(folder: Path, tokenizer: Path, kind: str, workers: int, out: Path) -> dict[str, Any]:
    """One measurement in this process: MB/s of input and the process tree's peak RSS."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per process on both sides
    files = sorted(folder.glob("*.jsonl"))
    nbytes = sum(f.stat().st_size for f in files)
    sampler = _TreeRss()
    start = time.perf_counter()
    if kind == "baseline":
        tokens = _encode_batch_loop(files, tokenizer)
    else:
        from proxies.prepare import PrepOptions, TokenizerSpec, prepare_tokens

        corpus = prepare_tokens(
            {"domain": folder},
            out,
            tokenizer=TokenizerSpec(path=tokenizer),
            options=PrepOptions(workers=workers),
        )
        tokens = corpus.tokens("source")["domain"]
    seconds = time.perf_counter() - start
    peak = sampler.stop()
    return {
        "input_mb": nbytes / 1e6,
        "seconds": seconds,
        "mb_per_s": nbytes / 1e6 / seconds,
        "tokens": tokens,
        "peak_rss_mb": peak / 1e6,
    }


def _encode_batch_loop(files: list[Path], tokenizer: Path) -> int:
    """Read, parse and encode, in batches of the size the preparation's workers use."""
    from tokenizers import Tokenizer

    from proxies.prepare.worker import BATCH_BYTES, BATCH_DOCS

    tok = Tokenizer.from_file(str(tokenizer))
    n = 0
    batch: list[str] = []
    size = 0
    for path in files:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                batch.append(json.loads(line)["text"])
                size += len(batch[-1])
                if len(batch) >= BATCH_DOCS or size >= BATCH_BYTES:
                    n += sum(len(e.ids) + 1 for e in tok.encode_batch(batch))
                    batch, size = [], 0
    if batch:
        n += sum(len(e.ids) + 1 for e in tok.encode_batch(batch))
    return n


class _TreeRss:
    """Largest sum of the resident sets of this process and its descendants, sampled."""

    def __init__(self, every: float = 0.2):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(every,), daemon=True)
        self._thread.start()

    def _loop(self, every: float) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(os.getpid()))
            self._stop.wait(every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _tree_rss(os.getpid()))


def _tree_rss(root: int) -> int:
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * page
        except (OSError, ValueError, IndexError):
            continue
    total, frontier = 0, [root]
    while frontier:
        pid = frontier.pop()
        total += rss.get(pid, 0)
        frontier += [c for c, parent in parents.items() if parent == pid]
    return total


COLUMNS: list[Column] = [
    ("domain", col("domain")),
    ("input MB", col("input_mb", ".0f")),
    ("method", col("kind")),
    ("processes", col("workers")),
    ("MB/s", col("mb_per_s", ".2f")),
    ("x encode_batch", col("vs_baseline", ".2f")),
    ("peak RSS MB", col("peak_rss_mb", ".0f")),
    ("tokens", col("tokens", ",")),
    ("seconds", col("seconds", ".0f")),
]
SCALE_COLUMNS = [c for c in COLUMNS if c[0] != "x encode_batch"]

CASES = [
    Case(name="prepare_throughput", params=PrepareParams, run=run, tables=one_table(COLUMNS)),
    Case(name="prepare_scale", params=ScaleParams, run=run, tables=one_table(SCALE_COLUMNS)),
]


if __name__ == "__main__":  # one measurement in this fresh process
    result = measure(
        Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
    )
    print(json.dumps(result))
