"""Run leases: processes that share a run store train each run once; a lease whose holder died
(SIGKILL) or stopped beating is broken and the run trains."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from mixtures.mixture import Mixture
from proxies import pack as pack_module
from proxies.leases import LeaseTimes, RunLeased, RunLeases, lease_path
from proxies.runs import RunSpec, RunStore, execute_pack, execute_run
from proxies.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
CFG = TrainConfig(model="nano", seq_len=16, batch_size=4, train_tokens=512, eval_tokens=256)
FAST = LeaseTimes(heartbeat_seconds=0.05, stale_seconds=0.5, poll_seconds=0.02)


def _specs(corpus, n: int) -> list[RunSpec]:
    domains = ("alpha", "beta", "gamma")
    return [
        RunSpec.for_mixture(
            Mixture.from_array(domains, [(i + 1) / (i + 3), 1 / (i + 3), 1 / (i + 3)]),
            kind="proxy",
            corpus=corpus,
            train_domains=domains,
            eval_domains=list(corpus.domains),
            train=CFG,
            seed=0,
        )
        for i in range(n)
    ]


def _forge_lease(store: RunStore, run_id: str, **holder: object) -> Path:
    """A lease file as another process would leave it."""
    data = {"host": "elsewhere", "pid": 1, "process_start": None, "taken_at": 0.0, "token": "x"}
    path = lease_path(store.root, run_id)
    path.write_text(json.dumps({**data, **holder}))
    return path


def test_a_lease_is_taken_once_and_released(tmp_path):
    store = RunStore(tmp_path, lease_times=FAST)
    with store.leases() as mine, store.leases() as other:
        assert mine.take("r1")
        assert not other.take("r1")  # held by another call of this live process
        holder = store.lease_holder("r1")
        assert holder is not None and holder.pid == os.getpid()
        mine.release("r1")
        assert store.lease_holder("r1") is None and not lease_path(tmp_path, "r1").exists()
        assert other.take("r1")
    assert not lease_path(tmp_path, "r1").exists()  # leaving the block releases what is held


def test_a_heartbeat_keeps_a_lease_live_and_a_silent_one_goes_stale(tmp_path):
    store = RunStore(tmp_path, lease_times=FAST)
    silent = _forge_lease(store, "silent")  # another host: judged by its heartbeat only
    with store.leases() as mine:
        assert mine.take("beating")
        assert store.lease_holder("silent") is not None  # fresh
        time.sleep(4 * FAST.stale_seconds)
        assert store.lease_holder("beating") is not None  # touched all along
        assert store.lease_holder("silent") is None  # not touched: stale
        assert mine.take("silent")  # broken and taken
        assert json.loads(silent.read_text())["pid"] == os.getpid()


def test_a_lease_of_a_dead_process_on_this_host_is_stale_at_once(tmp_path):
    store = RunStore(tmp_path)  # default times: only the pid can make it stale this soon
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = int(proc.stdout)
    _forge_lease(store, "r", host=socket.gethostname(), pid=dead)
    assert store.lease_holder("r") is None
    # the same pid alive but started later than the holder (a reused pid) is not the holder
    _forge_lease(store, "q", host=socket.gethostname(), pid=os.getpid(), process_start=1)
    assert store.lease_holder("q") is None
    with store.leases() as mine:
        assert mine.take("r") and mine.take("q")


_HOLD_SCRIPT = """
import sys, time
from proxies.runs import RunStore
leases = RunStore(sys.argv[1]).leases()
assert leases.take(sys.argv[2])
print("held", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_lease_left_by_a_sigkilled_process_is_broken_and_the_run_trains(tiny_corpus, tmp_path):
    (spec,) = _specs(tiny_corpus, 1)
    store = RunStore(tmp_path / "store")
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_SCRIPT, str(store.root), spec.run_id],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    holder = store.lease_holder(spec.run_id)
    assert holder is not None and holder.pid == proc.pid
    with pytest.raises(RunLeased, match=f"being trained by process {proc.pid}"):
        execute_run(spec, tiny_corpus, store, wait=False)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert lease_path(store.root, spec.run_id).exists()  # nothing released it
    record, computed = execute_run(spec, tiny_corpus, store, wait=False)
    assert computed and record["result"]["status"] == "ok"
    assert not lease_path(store.root, spec.run_id).exists()


def test_a_waiting_run_takes_the_record_of_the_process_that_trained_it(tiny_corpus, tmp_path):
    (spec,) = _specs(tiny_corpus, 1)
    store = RunStore(tmp_path, lease_times=FAST)
    other = RunLeases(store.root, FAST)
    assert other.take(spec.run_id)
    theirs = {"run_id": spec.run_id, "result": {"status": "ok"}, "finished_at": 1.0}

    def finish() -> None:
        time.sleep(0.3)
        store.write(theirs)
        other.close()

    with pytest.raises(RunLeased):
        execute_run(spec, tiny_corpus, store, wait=False)
    thread = threading.Thread(target=finish)
    thread.start()
    record, computed = execute_run(spec, tiny_corpus, store)
    thread.join()
    assert (record, computed) == (theirs, False)  # not trained here


def test_a_pack_leaves_out_a_member_another_process_trains(tiny_corpus, tmp_path, monkeypatch):
    from proxies.train import TrainResult

    specs = _specs(tiny_corpus, 3)
    store = RunStore(tmp_path, lease_times=FAST)
    given: list[list[float]] = []

    def fake_train_pack(corpus, *, members, on_result, **kwargs):
        given.append([float(m.weights[0]) for m in members])
        for pos in range(len(members)):
            on_result(pos, TrainResult(status="ok", val_loss={"alpha": 1.0}))

    monkeypatch.setattr(pack_module, "train_pack", fake_train_pack)
    other = RunLeases(store.root, FAST)
    assert other.take(specs[1].run_id)
    out = execute_pack(specs, tiny_corpus, store, wait=False)
    assert [r["run_id"] for r, _ in out] == [specs[0].run_id, specs[2].run_id]
    assert given == [[specs[0].weights[0], specs[2].weights[0]]]
    assert store.load(specs[1].run_id) is None
    # waiting: the member is the other's once its record is written
    theirs = {"run_id": specs[1].run_id, "result": {"status": "ok"}, "finished_at": 2.0}
    threading.Timer(0.3, lambda: (store.write(theirs), other.close())).start()
    out = execute_pack(specs, tiny_corpus, store)
    assert [(r["run_id"], c) for r, c in out] == [(s.run_id, False) for s in specs]
    assert out[1][0] == theirs and len(given) == 1


_SWEEP_SCRIPT = """
import json, os, sys, time
from pathlib import Path
import proxies.train as train_module
from proxies.leases import LeaseTimes, RunLeased
from proxies.runs import RunSpec, RunStore, execute_run
from proxies.tokens import TokenCorpus

spec_file, tokens, store_dir, go, trained = sys.argv[1:6]
real = train_module.train_model

def counted(*args, **kwargs):
    with open(trained, "a") as fh:  # one short append per training: whole lines
        fh.write(f"{os.getpid()} {kwargs['seed']} {list(kwargs['weights'])}\\n")
    return real(*args, **kwargs)

train_module.train_model = counted
specs = [RunSpec.model_validate(s) for s in json.loads(Path(spec_file).read_text())]
corpus = TokenCorpus.load(tokens)
store = RunStore(store_dir, lease_times=LeaseTimes(heartbeat_seconds=0.2, poll_seconds=0.05))
Path(f"{go}.ready.{os.getpid()}").touch()
while not Path(go).exists():
    time.sleep(0.005)
deferred = []
for spec in specs:  # as a sweep does: runs held elsewhere first left, then waited for
    try:
        execute_run(spec, corpus, store, wait=False)
    except RunLeased:
        deferred.append(spec)
for spec in deferred:
    execute_run(spec, corpus, store)
print(json.dumps({s.run_id: store.finished(s.run_id)["result"]["status"] for s in specs}))
"""


@pytest.mark.slow
def test_two_processes_on_one_store_train_every_run_once(tiny_corpus, tmp_path):
    specs = _specs(tiny_corpus, 8)
    spec_file = tmp_path / "specs.json"
    spec_file.write_text(json.dumps([s.model_dump(mode="json") for s in specs]))
    store = tmp_path / "store"
    go, trained = tmp_path / "go", tmp_path / "trained.txt"
    args = [str(spec_file), str(tiny_corpus.path), str(store), str(go), str(trained)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SWEEP_SCRIPT, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    deadline = time.time() + 300
    while len(list(tmp_path.glob("go.ready.*"))) < 2 and time.time() < deadline:
        time.sleep(0.05)  # both import torch and load the corpus; then they start together
    go.touch()
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    # each process ends with every run finished, ok
    for stdout, _ in outs:
        assert json.loads(stdout) == {s.run_id: "ok" for s in specs}
    lines = trained.read_text().splitlines()
    by_run = Counter(line.split(" ", 1)[1] for line in lines)
    assert len(lines) == len(specs) and set(by_run.values()) == {1}  # every run trained once
    by_pid = Counter(line.split(" ", 1)[0] for line in lines)
    assert sorted(by_pid) == sorted(str(p.pid) for p in procs)  # and both did some of them
    assert not list(store.glob("*.lease*"))
