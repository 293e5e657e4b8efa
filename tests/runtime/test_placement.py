"""Each training task gets its own device: the thread runner's lease, Ray's GPUs, a local Dask
cluster's pinned workers; tasks see the corpus and the run store at absolute paths or fail
naming them; a retried task neither trains a run twice nor tears its record."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from configs.schema import RunnerConfig, parse_config
from mixtures.errors import ConfigError, DataError
from runtime.placement import (
    CUDA_VISIBLE_DEVICES,
    GPU,
    DeviceLease,
    absolute_path,
    dask_cluster_kwargs,
    gpus_per_task,
    local_gpu_ids,
    open_run_inputs,
    ray_init_kwargs,
    retry_unless_deterministic,
    task_placement,
    thread_devices,
)
from runtime.runners import make_task_runner


def _hold_together(lease: DeviceLease, n: int) -> tuple[list[str], dict[str, int]]:
    """n threads each hold a device until all n hold one; (their devices, holders then)."""
    barrier = threading.Barrier(n + 1, timeout=30)
    got: list[str] = []

    def task() -> None:
        with lease.hold() as device:
            got.append(device)
            barrier.wait()  # every task holds its device now
            barrier.wait()  # the snapshot is taken

    threads = [threading.Thread(target=task) for _ in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    during = lease.holders()
    barrier.wait()
    for t in threads:
        t.join()
    return got, during


def test_concurrent_tasks_get_balanced_distinct_leases() -> None:
    lease = DeviceLease(["cuda:0", "cuda:1"])
    got, during = _hold_together(lease, 2)
    assert sorted(got) == ["cuda:0", "cuda:1"]
    got, during = _hold_together(lease, 6)
    assert during == {"cuda:0": 3, "cuda:1": 3}
    assert sorted(got) == ["cuda:0"] * 3 + ["cuda:1"] * 3
    assert lease.holders() == {"cuda:0": 0, "cuda:1": 0}


def test_lease_takes_the_least_busy_device_in_turn_and_is_given_back_on_error() -> None:
    lease = DeviceLease(["cuda:0", "cuda:1", "cuda:2"])
    # one after another: round-robin, not always the first idle device
    taken = []
    for _ in range(4):
        with lease.hold() as device:
            taken.append(device)
    assert taken == ["cuda:0", "cuda:1", "cuda:2", "cuda:0"]
    with lease.hold() as busy:  # cuda:1 is held: the next two go to the idle ones
        assert busy == "cuda:1"
        with lease.hold() as a, lease.hold() as b:
            assert {a, b} == {"cuda:0", "cuda:2"}
            with lease.hold() as c:  # every device busy now: the next in turn doubles up
                assert lease.holders()[c] == 2
        with pytest.raises(RuntimeError, match="training crashed"), lease.hold() as device:
            assert device != busy
            raise RuntimeError("training crashed")
        assert lease.holders() == {"cuda:0": 0, "cuda:1": 1, "cuda:2": 0}
    assert lease.holders() == {"cuda:0": 0, "cuda:1": 0, "cuda:2": 0}
    with pytest.raises(ConfigError, match="at least one device"):
        DeviceLease([])


def test_task_placement_with_a_lease_and_for_a_cpu_run() -> None:
    lease = DeviceLease(["cuda:0", "cuda:1"])
    with task_placement(lease, train_device="auto") as first:
        with task_placement(lease, train_device="cuda") as second:
            assert (first.device, second.device) == ("cuda:0", "cuda:1")
            assert lease.holders() == {"cuda:0": 1, "cuda:1": 1}
        with task_placement(lease, train_device="cpu") as cpu:
            assert cpu.device is None  # a cpu run trains on its train.device, holding nothing
            assert lease.holders() == {"cuda:0": 1, "cuda:1": 0}
    assert first.host == socket.gethostname()
    record = first.to_json()
    assert record["device"] == "cuda:0" and record["host"] == socket.gethostname()
    assert json.loads(json.dumps(record)) == record
    # no lease, not a Ray task nor a Dask worker: the config's own device
    with task_placement(None) as plain:
        assert plain.device is None


def test_runner_device_fields_are_validated_with_clear_errors() -> None:
    def runner(**fields: object) -> RunnerConfig:
        return parse_config({"name": "x", "target": {"domain": "a"}, "runner": fields}).runner

    assert runner(kind="ray", gpus=4, gpus_per_task=0.25).gpus_per_task == 0.25
    assert runner(devices=["cuda:1", "cpu"]).devices == ["cuda:1", "cpu"]
    cases = {
        "runner.gpus must be a whole number of GPUs, got 1.5": {"kind": "dask", "gpus": 1.5},
        "gpus_per_task: Input should be greater than 0": {"kind": "ray", "gpus_per_task": 0},
        "above 1 must be a whole number of GPUs, got 1.5": {"kind": "ray", "gpus_per_task": 1.5},
        "gpus_per_task 2 is more than runner.gpus 1": {
            "kind": "ray",
            "gpus": 1,
            "gpus_per_task": 2,
        },
        "runner.gpus sizes a local cluster": {"kind": "dask", "address": "tcp://h:8786", "gpus": 1},
        "runner.devices must be 'cuda:N' or 'cpu', got \\['gpu1'\\]": {"devices": ["gpu1"]},
        "names a device twice": {"devices": ["cuda:0", "cuda:0"]},
        "runner.devices is for kind 'thread', not 'ray'": {"kind": "ray", "devices": ["cpu"]},
        "are for kind dask or ray": {"kind": "thread", "gpus_per_task": 1},
    }
    for message, fields in cases.items():
        with pytest.raises(ConfigError, match=message):
            runner(**fields)


def test_default_devices_and_gpus_come_from_torch_when_the_runner_is_made(monkeypatch) -> None:
    monkeypatch.setattr("runtime.placement.cuda_device_count", lambda: 2)
    assert thread_devices(RunnerConfig()) == ["cuda:0", "cuda:1"]
    assert thread_devices(RunnerConfig(devices=["cuda:3"])) == ["cuda:3"]
    assert ray_init_kwargs(RunnerConfig(kind="ray")) == {"num_gpus": 2}
    assert ray_init_kwargs(RunnerConfig(kind="ray", address="auto")) == {}
    ray_runner = make_task_runner(RunnerConfig(kind="ray", max_workers=4, gpus=4))
    assert ray_runner.init_kwargs["num_gpus"] == 4
    assert ray_runner.init_kwargs["num_cpus"] == 4
    monkeypatch.setattr("runtime.placement.cuda_device_count", lambda: 0)
    assert thread_devices(RunnerConfig()) == []
    assert ray_init_kwargs(RunnerConfig(kind="ray")) == {"num_gpus": 0}
    assert dask_cluster_kwargs(RunnerConfig(kind="dask")) == {}


def test_local_dask_workers_are_pinned_round_robin_and_offer_their_share(monkeypatch) -> None:
    monkeypatch.delenv(CUDA_VISIBLE_DEVICES, raising=False)
    kwargs = make_task_runner(RunnerConfig(kind="dask", max_workers=3, gpus=2)).cluster_kwargs
    assert kwargs["resources"] == {GPU: 0.5}  # up to two workers share a GPU
    (pin,) = kwargs["plugins"]
    assert [pin.gpu_of(i) for i in range(3)] == ["0", "1", "0"]
    with pytest.raises(ValueError, match="named by its number"):
        pin.gpu_of("tcp://10.0.0.5:4000")
    two = dask_cluster_kwargs(RunnerConfig(kind="dask", max_workers=2, gpus=2))
    assert two["resources"] == {GPU: 1.0}
    monkeypatch.setenv(CUDA_VISIBLE_DEVICES, "")  # restored after the test
    pin.setup(SimpleNamespace(name=1))  # what a worker process does as it starts
    assert os.environ[CUDA_VISIBLE_DEVICES] == "1"
    # the GPUs this process was given, not the machine's first ones
    monkeypatch.setenv(CUDA_VISIBLE_DEVICES, "4,6")
    assert local_gpu_ids(2) == ["4", "6"]
    with pytest.raises(ConfigError, match="gpus is 3 but CUDA_VISIBLE_DEVICES='4,6' names only 2"):
        local_gpu_ids(3)


def test_gpus_per_task_defaults_to_one_or_the_share_and_refuses_what_cannot_start() -> None:
    ray = RunnerConfig(kind="ray")
    assert gpus_per_task(ray, 4.0, "the Ray cluster") == 1.0
    assert gpus_per_task(ray, 0.5, "a worker") == 0.5
    assert gpus_per_task(ray, 0.0, "the Ray cluster") == 0.0
    assert gpus_per_task(RunnerConfig(kind="ray", gpus_per_task=0.25), 1.0, "x") == 0.25
    with pytest.raises(ConfigError, match="is 1 but a Dask worker offers at most 0.5 GPUs"):
        gpus_per_task(RunnerConfig(kind="dask", gpus_per_task=1), 0.5, "a Dask worker")


def test_a_worker_without_the_corpus_or_the_store_fails_naming_path_and_host(
    tiny_corpus, tmp_path
) -> None:
    host = socket.gethostname()
    missing_tokens = tmp_path / "elsewhere" / "tokens"
    with pytest.raises(DataError, match=f"no token corpus at {missing_tokens}.*on host {host}"):
        open_run_inputs(str(missing_tokens), str(tmp_path), host=host)
    missing_store = tmp_path / "exp" / "proxy_runs"
    with pytest.raises(DataError, match=f"run store {missing_store} does not exist.*host {host}"):
        open_run_inputs(str(tiny_corpus.path), str(missing_store), host=host)
    assert not missing_store.exists() and not missing_store.parent.exists()
    corpus, store = open_run_inputs(str(tiny_corpus.path), str(tmp_path), host=host)
    assert corpus.fingerprint == tiny_corpus.fingerprint and store.root == tmp_path


def test_flows_hand_tasks_absolute_paths(tiny_corpus, tmp_path, monkeypatch) -> None:
    import flows.proxy_sweep as sweep_module
    from configs.schema import load_config
    from proxies.runs import write_run_list

    monkeypatch.chdir(tmp_path)
    assert absolute_path("a/b") == str(tmp_path / "a" / "b")
    write_run_list([], tmp_path / "lists")
    (run_list,) = (tmp_path / "lists").glob("*.json")
    seen: dict = {}
    monkeypatch.setattr(
        sweep_module,
        "submit_runs",
        lambda runs, tokens_dir, store_dir, runner: seen.update(t=tokens_dir, s=store_dir) or {},
    )
    sweep_module.proxy_sweep.fn(f"lists/{run_list.name}", "corpus/tokens", "exp/proxy_runs")
    assert seen == {"t": str(tmp_path / "corpus/tokens"), "s": str(tmp_path / "exp/proxy_runs")}

    class _Flow:  # stands in for the subflow: records what train_runs hands it
        def with_options(self, **_: object) -> _Flow:
            return self

        def __call__(self, *args: object) -> dict:
            seen["args"] = args
            return {}

    monkeypatch.setattr(sweep_module, "proxy_sweep", _Flow())
    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml")
    sweep_module.train_runs(config, [], "corpus/tokens", Path("exp/proxy_runs"))
    run_list_path, tokens_dir, store_dir, runner = seen["args"]
    assert all(Path(p).is_absolute() for p in (run_list_path, tokens_dir, store_dir))
    assert store_dir == str(tmp_path / "exp/proxy_runs") and runner == config.runner


def test_a_placement_device_overrides_train_device_and_keeps_the_run_id(
    tiny_corpus, tmp_path
) -> None:
    from mixtures.mixture import Mixture
    from proxies.runs import RunSpec, RunStore, execute_run
    from proxies.train import TrainConfig

    train = ["alpha", "beta", "gamma"]
    cuda_only = TrainConfig(
        model="nano", seq_len=16, batch_size=4, train_tokens=512, eval_tokens=256, device="cuda"
    )
    spec = RunSpec.for_mixture(
        Mixture.from_array(train, [0.4, 0.3, 0.3]),
        kind="proxy",
        corpus=tiny_corpus,
        train_domains=train,
        eval_domains=list(tiny_corpus.domains),
        train=cuda_only,
        seed=0,
    )
    # this torch has no CUDA: as configured the run fails, placed on the CPU it trains
    as_configured, _ = execute_run(spec, tiny_corpus, RunStore(tmp_path / "a"))
    assert as_configured["result"]["status"] == "failed"
    assert "no CUDA device" in as_configured["result"]["error"]
    placed, computed = execute_run(spec, tiny_corpus, RunStore(tmp_path / "b"), device="cpu")
    assert computed and placed["run_id"] == as_configured["run_id"] == spec.run_id
    assert placed["spec"] == as_configured["spec"]  # the device is not part of the run
    assert placed["result"]["status"] == "ok" and placed["result"]["device"] == "cpu"


def test_only_errors_another_attempt_can_fix_are_retried() -> None:
    from prefect.states import Failed

    def retried(err: Exception) -> bool:
        return retry_unless_deterministic(None, None, Failed(data=err))

    assert retried(OSError("stale file handle"))
    assert retried(RuntimeError("worker lost"))
    assert not retried(DataError("no token corpus at /x"))
    assert not retried(ConfigError("runner.gpus_per_task"))


@pytest.mark.slow
def test_a_retried_task_neither_trains_twice_nor_tears_the_record(
    prefect_api, tiny_corpus, tmp_path, monkeypatch
) -> None:
    """The first attempt dies right after its record is written (a worker lost then); the
    retry finds the finished record and skips: one training, one intact record, the leased
    device recorded."""
    import flows.proxy_sweep as sweep_module
    import proxies.train
    from mixtures.mixture import Mixture
    from proxies.runs import RunSpec, RunStore, write_run_list
    from proxies.train import TrainConfig
    from tasks.proxy import run_proxy_task

    train = ["alpha", "beta", "gamma"]
    spec = RunSpec.for_mixture(
        Mixture.from_array(train, [0.4, 0.3, 0.3]),
        kind="proxy",
        corpus=tiny_corpus,
        train_domains=train,
        eval_domains=list(tiny_corpus.domains),
        train=TrainConfig(
            model="nano", seq_len=16, batch_size=4, train_tokens=512, eval_tokens=256
        ),
        seed=0,
    )
    trained, writes = [], []
    real_train, real_write = proxies.train.train_model, RunStore.write

    def counted_train(*args, **kwargs):
        trained.append(kwargs.get("device"))
        return real_train(*args, **kwargs)

    def write_then_die(self, record):
        path = real_write(self, record)
        writes.append(record["finished_at"])
        if len(writes) == 1:
            raise ConnectionResetError("worker lost after writing its record")
        return path

    monkeypatch.setattr(proxies.train, "train_model", counted_train)
    monkeypatch.setattr(RunStore, "write", write_then_die)
    monkeypatch.setattr(
        sweep_module, "run_proxy_task", run_proxy_task.with_options(retry_delay_seconds=0)
    )
    store = tmp_path / "store"
    run_list = write_run_list([("mix", spec)], tmp_path / "lists")
    labels = sweep_module.proxy_sweep(
        str(run_list), str(tiny_corpus.path), str(store), RunnerConfig(devices=["cpu"])
    )
    assert labels == {spec.run_id: "mix"}
    assert trained == ["cpu"]  # trained once, on the leased device
    assert len(writes) == 1  # the retry skipped the finished run: nothing rewritten
    assert sorted(p.name for p in store.iterdir()) == [f"{spec.run_id}.json"]
    record = json.loads((store / f"{spec.run_id}.json").read_text())
    assert record["finished_at"] == writes[0] and record["result"]["status"] == "ok"
    assert record["placement"]["host"] == socket.gethostname()
    assert record["placement"]["device"] == "cpu"


@pytest.mark.slow
def test_ray_with_four_gpus_gives_four_concurrent_tasks_four_distinct_gpus(monkeypatch) -> None:
    """A local Ray instance started as the ray runner starts it, offering 4 (fake) GPUs: four
    concurrent one-GPU tasks each get their own GPU id, which the placement function reads and
    makes the process's CUDA_VISIBLE_DEVICES."""
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    runner = RunnerConfig(kind="ray", max_workers=4, gpus=4)
    ray.init(
        num_cpus=runner.max_workers,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        **ray_init_kwargs(runner),
    )
    try:

        @ray.remote(num_cpus=0)
        class Barrier:
            def __init__(self) -> None:
                self.arrived = 0

            def arrive(self) -> int:
                self.arrived += 1
                return self.arrived

            def count(self) -> int:
                return self.arrived

        @ray.remote(num_gpus=1)
        def placed(barrier) -> dict:
            from runtime.placement import task_placement

            with task_placement(None) as placement:
                ray.get(barrier.arrive.remote())
                deadline = time.monotonic() + 120
                while ray.get(barrier.count.remote()) < 4:  # all four hold their GPU at once
                    if time.monotonic() > deadline:
                        raise TimeoutError("the four tasks never ran at the same time")
                    time.sleep(0.05)
                return {**placement.to_json(), "env": os.environ.get("CUDA_VISIBLE_DEVICES")}

        barrier = Barrier.remote()
        got = ray.get([placed.remote(barrier) for _ in range(4)], timeout=300)
    finally:
        ray.shutdown()
    ids = [tuple(p["visible_devices"]) for p in got]
    assert sorted(ids) == [("0",), ("1",), ("2",), ("3",)]
    assert all(p["device"] == "cuda:0" for p in got)
    assert all(p["env"] == ",".join(p["visible_devices"]) for p in got)


@pytest.mark.slow
def test_local_dask_workers_each_see_their_own_gpu(monkeypatch) -> None:
    """A LocalCluster made with the dask runner's GPU arguments: each worker process sees its
    own GPU, and a task annotated with the GPU resource is placed on cuda:0 of its worker."""
    import dask
    from distributed import Client, LocalCluster

    monkeypatch.delenv(CUDA_VISIBLE_DEVICES, raising=False)
    runner = RunnerConfig(kind="dask", max_workers=2, gpus=2)
    cluster_kwargs = make_task_runner(runner).cluster_kwargs
    with LocalCluster(**cluster_kwargs) as cluster, Client(cluster) as client:
        seen = client.run(lambda: os.environ.get(CUDA_VISIBLE_DEVICES))
        assert sorted(seen.values()) == ["0", "1"]

        def placed() -> dict:
            with task_placement(None) as placement:
                return placement.to_json()

        with dask.annotate(resources={GPU: 1.0}):
            futures = [client.submit(placed, pure=False) for _ in range(2)]
        got = client.gather(futures)
    assert all(p["device"] == "cuda:0" and len(p["visible_devices"]) == 1 for p in got)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dask", "ray"])
def test_sweep_on_a_local_cluster_with_gpus_places_each_run_on_one_gpu(
    kind, prefect_api, tiny_corpus, tmp_path
) -> None:
    """The proxy_sweep flow on a local cluster that offers 2 (fake) GPUs: every task is
    submitted for one GPU, sees one GPU id and trains on its cuda:0; on this CPU-only torch the
    run then fails, recorded with its placement, and the sweep goes on."""
    from flows.proxy_sweep import proxy_sweep
    from mixtures.mixture import Mixture
    from proxies.runs import RunSpec, RunStore, write_run_list
    from proxies.train import TrainConfig

    train = ["alpha", "beta", "gamma"]
    runs = [
        (
            f"mix{i}",
            RunSpec.for_mixture(
                Mixture.from_array(train, [0.4, 0.3, 0.3]),
                kind="proxy",
                corpus=tiny_corpus,
                train_domains=train,
                eval_domains=list(tiny_corpus.domains),
                train=TrainConfig(model="nano", seq_len=16, batch_size=4, train_tokens=512),
                seed=i,
            ),
        )
        for i in range(2)
    ]
    runner = RunnerConfig(kind=kind, max_workers=2, gpus=2, torch_threads=1)
    store = tmp_path / "store"
    flow_ = proxy_sweep.with_options(task_runner=make_task_runner(runner))
    flow_(str(write_run_list(runs, tmp_path / "lists")), str(tiny_corpus.path), str(store), runner)
    records = RunStore(store).records()
    assert len(records) == 2
    for record in records:
        placement = record["placement"]
        assert placement["device"] == "cuda:0", placement
        assert len(placement["visible_devices"]) == 1 and placement["visible_devices"][0] in "01"
        assert record["result"]["status"] == "failed"  # no CUDA in this torch build
        assert "CUDA" in record["result"]["error"], record["result"]["error"]
