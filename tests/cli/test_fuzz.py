"""Malformed inputs through the real command line, kept as data in ``fuzz_cases.yaml``: each case
must exit with its code, print a message containing its phrase, and print no traceback.

Most cases run in this process (``cli.main.main(argv)``), with every way to start work replaced
by a function that fails the test: the temporary Prefect server, the deployments of ``serve``,
and whatever the case lists under ``forbid``. So a case also shows that its input is checked
before any server starts or any work begins. Cases with ``process: true`` need a flow (the error
is raised inside it, where only the built corpus shows it) and run ``python -m cli.main`` as a
subprocess (marked slow), started when the module's first test runs so that they overlap the
others.

Case fields (placeholders ``{tmp}``: the case's own folder, also its working directory;
``{root}``: the repository; ``{smoke}``: ``configs/smoke.yaml``; ``{long_name}``: a file name
too long for the file system):

- ``id``, ``argv``, ``exit`` (the exit code), ``message`` (a phrase of stdout + stderr);
- ``files``: path under ``{tmp}`` -> text, or ``{hex: ...}`` (bytes), ``{folder: true}``,
  ``{docs: N}`` (a domain folder of N text documents), ``{parquet: {column: [values]}}``,
  ``{copy: path}``;
- ``forbid``: dotted names of functions the case must not reach (``module.attr`` or
  ``module.Class.method``);
- ``process``: run as a subprocess.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CASES_FILE = Path(__file__).with_name("fuzz_cases.yaml")
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))["cases"]
#: What no in-process case may reach: a server or a deployment means the input was not checked
#: before the work.
ALWAYS_FORBIDDEN = ("runtime.server.TemporaryAPI.__enter__", "cli.serve.build_deployments")
#: A file name longer than any file system allows (255 bytes on Linux).
LONG_NAME = "n" * 300
#: Seconds a subprocess case may take (a corpus of a few tiny domains, one flow).
PROCESS_TIMEOUT = 300
#: Words of the generated domain documents: enough distinct text for a tokenizer to train on.
_WORDS = ("the", "of", "code", "data", "model", "mixture", "domain", "token", "proxy", "weight")


class WorkStarted(BaseException):
    """Raised where a case's work would start; a BaseException, so that no ``except
    Exception`` on the way turns it into an ordinary error message."""


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in cases]


IN_PROCESS = [c for c in CASES if not c.get("process")]
IN_SUBPROCESS = [c for c in CASES if c.get("process")]


def _fill(value: str, tmp: Path) -> str:
    """The placeholders of a case's string replaced (``str.format`` would trip over YAML's
    braces)."""
    return (
        value.replace("{tmp}", str(tmp))
        .replace("{root}", str(ROOT))
        .replace("{smoke}", str(ROOT / "configs" / "smoke.yaml"))
        .replace("{long_name}", LONG_NAME)
    )


def _make_files(case: dict[str, Any], tmp: Path) -> None:
    for rel, spec in (case.get("files") or {}).items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, str):
            path.write_text(_fill(spec, tmp), encoding="utf-8")
        elif "hex" in spec:
            path.write_bytes(bytes.fromhex(spec["hex"]))
        elif "folder" in spec:
            path.mkdir(exist_ok=True)
        elif "docs" in spec:
            _write_docs(path, spec["docs"], seed=len(rel))
        elif "parquet" in spec:
            pl.DataFrame(spec["parquet"]).write_parquet(path)
        elif "copy" in spec:
            shutil.copyfile(_fill(spec["copy"], tmp), path)
        else:
            raise ValueError(f"case {case['id']}: unknown file spec {spec!r}")


def _write_docs(folder: Path, n: int, *, seed: int) -> None:
    """``n`` text documents of 150 words each: a usable domain folder."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        words = " ".join(rng.choice(_WORDS, size=150))
        (folder / f"doc{i:03d}.txt").write_text(f"document {i} of {folder.name}\n{words}\n")


def _forbid(monkeypatch: pytest.MonkeyPatch, dotted: str) -> None:
    """Replace the function at ``dotted`` with one that raises WorkStarted."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attr in parts[split:-1]:
            owner = getattr(owner, attr)
        break
    else:
        raise ValueError(f"no module in {dotted!r}")

    def started(*args: object, **kwargs: object) -> None:
        raise WorkStarted(dotted)

    monkeypatch.setattr(owner, parts[-1], started)


def _check(case: dict[str, Any], code: int | None, out: str, err: str, tmp: Path) -> None:
    text = out + err
    assert code == case["exit"], f"exit code {code}, expected {case['exit']}:\n{text[-3000:]}"
    phrase = _fill(case["message"], tmp)
    assert phrase in text, f"{phrase!r} not in the output:\n{text[-3000:]}"
    assert "Traceback" not in text, text[-3000:]


def test_cases_are_well_formed() -> None:
    """At least 115 cases, unique ids, each with argv, an exit code and a phrase."""
    assert len(CASES) >= 115
    assert len(set(_ids(CASES))) == len(CASES)
    for case in CASES:
        assert {"id", "argv", "exit", "message"} <= case.keys(), case
        assert case["message"].strip(), case["id"]


def test_every_subcommand_has_cases() -> None:
    """Each command of ``mixopt --help`` (and each of its subcommands) is fuzzed."""
    import argparse

    from cli.main import build_parser

    def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> Iterator[tuple]:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield prefix
        for action in subs:
            for name, sub in action.choices.items():
                yield from commands(sub, (*prefix, name))

    covered = {tuple(a for a in c["argv"] if not a.startswith("-"))[:2] for c in CASES}
    missing = [
        " ".join(cmd)
        for cmd in commands(build_parser(), ())
        if not any(cov[: len(cmd)] == cmd for cov in covered)
    ]
    assert not missing, f"no fuzz case for: {missing}"


@pytest.fixture(scope="module")
def processes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[subprocess.Popen, Path]]]:
    """The selected subprocess cases, all started at once: id -> (process, its folder); the
    output goes to ``stdout.txt`` and ``stderr.txt`` there."""
    selected = {
        item.callspec.id
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == "test_in_subprocess"
    }
    started = {}
    for case in IN_SUBPROCESS:
        if case["id"] not in selected:
            continue
        tmp = tmp_path_factory.mktemp(case["id"])
        _make_files(case, tmp)
        env = {**os.environ, "PREFECT_HOME": str(tmp / "prefect"), "PYTHONPATH": str(ROOT)}
        env.pop("PREFECT_API_URL", None)
        argv = [_fill(a, tmp) for a in case["argv"]]
        with open(tmp / "stdout.txt", "wb") as out, open(tmp / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cli.main", *argv], cwd=tmp, env=env, stdout=out, stderr=err
            )
        started[case["id"]] = (proc, tmp)
    yield started
    for proc, _ in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def _start_processes(processes: dict[str, tuple[subprocess.Popen, Path]]) -> None:
    """Start the subprocess cases with the module's first test, whichever it is."""


@pytest.mark.parametrize("case", IN_PROCESS, ids=_ids(IN_PROCESS))
def test_in_process(
    case: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """``mixopt ARGV`` in this process, in the case's folder, with no way to start work."""
    from cli.main import main

    _make_files(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    for dotted in (*ALWAYS_FORBIDDEN, *case.get("forbid", [])):
        _forbid(monkeypatch, dotted)
    try:
        code = main([_fill(a, tmp_path) for a in case["argv"]])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capfd.readouterr()
    _check(case, code, out, err, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", IN_SUBPROCESS, ids=_ids(IN_SUBPROCESS))
def test_in_subprocess(
    case: dict[str, Any], processes: dict[str, tuple[subprocess.Popen, Path]]
) -> None:
    """``python -m cli.main ARGV``: the error comes from inside a flow."""
    proc, tmp = processes[case["id"]]
    code = proc.wait(timeout=PROCESS_TIMEOUT)
    out = (tmp / "stdout.txt").read_text(errors="replace")
    err = (tmp / "stderr.txt").read_text(errors="replace")
    _check(case, code, out, err, tmp)
