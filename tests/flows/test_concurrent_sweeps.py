"""Two `mixopt sweep` processes on one experiment folder split the runs between them: every run
is trained once, in one of the two, and both end with the whole run table."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
N_RUNS = 8  # + uniform and natural baselines


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
    )
    env.pop("PREFECT_API_URL", None)
    return env


def _cmd(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cli.main",
        "sweep",
        "--config",
        str(ROOT / "configs/smoke.yaml"),
        "--experiment-dir",
        str(tmp_path / "exp"),
        "--set",
        f"corpus.cache_dir={tmp_path / 'corpus'}",
        "--set",
        f"sweep.n_runs={N_RUNS}",
        "--set",
        "proxy.train_tokens=16384",  # a few seconds per run: the sweeps overlap
        *extra,
    ]


@pytest.mark.slow
@pytest.mark.parametrize("pack", [1, 4])
def test_two_sweeps_on_one_folder_train_every_run_once(tmp_path, pack):
    store = tmp_path / "exp" / "proxy_runs"
    cmd = _cmd(tmp_path, "--set", f"proxy.pack={pack}")
    first = subprocess.Popen(
        cmd, cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # The second starts once the first trains (its corpus is built: the two do not race to
    # build one corpus, which is not what this test is about).
    deadline = time.time() + 300
    while not list(store.glob("*.lease")) and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert first.poll() is None, "the first sweep ended before it trained"
    second = subprocess.Popen(
        cmd, cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    logs = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        assert f"{N_RUNS + 2} runs finished ok" in out
        logs.append(out + err)
    trained = []
    for log in logs:
        match = re.search(rf"{N_RUNS + 2} runs: (\d+) trained now, (\d+) finished earlier", log)
        assert match is not None, log[-3000:]
        trained.append(int(match.group(1)))
    assert sum(trained) == N_RUNS + 2  # each run trained by exactly one of the two
    assert trained[0] > 0
    records = [json.loads(p.read_text()) for p in store.glob("*.json")]
    assert len(records) == N_RUNS + 2
    assert {r["result"]["status"] for r in records} == {"ok"}
    assert not list(store.glob("*.lease*"))
