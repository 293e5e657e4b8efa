"""Run identity and results on disk: content-hashed, written atomically, skipped when finished,
and trained by one process at a time (``proxies.leases``) when several share a run store."""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from mixtures.errors import DataError
from mixtures.io import atomic_write_bytes, write_json
from mixtures.mixture import Mixture
from proxies.config import EvaluatorRef, TrainConfig, hashed_train
from proxies.leases import (
    Holder,
    LeaseTimes,
    RunLeased,
    RunLeases,
    lease_path,
    read_lease,
    wait_released,
)
from proxies.tokens import TokenCorpus

#: Weights are rounded before hashing so that a mixture read back from JSON/Parquet names the
#: same run as the one that was sampled.
WEIGHT_DECIMALS = 8
FINISHED = ("ok", "diverged")


class RunSpec(BaseModel):
    """Everything that determines a run's outcome; its hash is the run id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["proxy", "target"]
    corpus: str
    domains: tuple[str, ...]
    weights: tuple[float, ...]
    eval_domains: tuple[str, ...]
    train: TrainConfig
    seed: int
    evaluator: EvaluatorRef | None = None

    @field_validator("weights")
    @classmethod
    def _round(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(round(float(x), WEIGHT_DECIMALS) for x in v)

    @classmethod
    def for_mixture(
        cls,
        mixture: Mixture,
        *,
        kind: Literal["proxy", "target"],
        corpus: TokenCorpus,
        train_domains: Sequence[str],
        eval_domains: Sequence[str],
        train: TrainConfig,
        seed: int,
        evaluator: EvaluatorRef | None = None,
    ) -> RunSpec:
        return cls(
            kind=kind,
            corpus=corpus_identity(corpus, train_domains, eval_domains, evaluator),
            domains=tuple(train_domains),
            weights=tuple(mixture.to_array(train_domains).tolist()),
            eval_domains=tuple(eval_domains),
            train=train,
            seed=seed,
            evaluator=evaluator,
        )

    @property
    def run_id(self) -> str:
        """The first 16 hex digits of the sha256 of ``hashed_data()`` as sorted-key JSON."""
        blob = json.dumps(self.hashed_data(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def hashed_data(self) -> dict[str, Any]:
        """What the run id hashes: the spec's JSON, with ``train.model`` replaced by the fields
        of its resolved shape (``proxies.config.resolve_shape``), so the id follows the model
        that trains, not its name: a preset whose shape is edited names new runs, and a preset
        and the identical explicit shape name the same run. Fields added later are left out at
        their ``proxies.config.OMITTED_AT`` value (an unset evaluator too), so that adding one
        does not change the ids of specs that leave it there.
        """
        data = self.model_dump(mode="json")
        if data["evaluator"] is None:
            del data["evaluator"]
        data["train"] = hashed_train(self.train)
        return data


def corpus_identity(
    corpus: TokenCorpus,
    train_domains: Sequence[str],
    eval_domains: Sequence[str],
    evaluator: EvaluatorRef | None,
) -> str:
    """The corpus fingerprint a run's id hashes: that of the splits the run reads
    (``TokenCorpus.fingerprint_for``: its training domains' train splits, its evaluated
    domains' val splits), so that a held-out domain's train split never changes a run id. A run
    with an evaluator of its own may read any split: the whole corpus's fingerprint."""
    if evaluator is not None:
        return corpus.fingerprint
    return corpus.fingerprint_for(train_domains, eval_domains)


def check_corpus(specs: Sequence[RunSpec], corpus: TokenCorpus) -> None:
    """DataError unless each spec names ``corpus``: the fingerprint of what it reads, or the
    whole corpus's (specs written when run ids hashed the whole corpus)."""
    for spec in specs:
        reads = corpus_identity(corpus, spec.domains, spec.eval_domains, spec.evaluator)
        if spec.corpus not in (reads, corpus.fingerprint):
            raise DataError(
                f"run {spec.run_id} was specified for corpus {spec.corpus}, but the loaded "
                f"corpus is {corpus.fingerprint} (the splits the run reads: {reads})"
            )


def finished_record(spec: RunSpec, store: RunStore, corpus: TokenCorpus) -> dict[str, Any] | None:
    """``spec``'s finished record; else, when ``spec`` names a part of ``corpus``, the finished
    record of the same run named by the whole corpus (its id before run ids hashed only what a
    run reads), copied under ``spec``'s id with ``adopted_from`` set. That run read the same
    splits of the same corpus, so nothing finished is trained again after the change."""
    done = store.finished(spec.run_id)
    if done is not None or spec.corpus == corpus.fingerprint:
        return done
    whole = spec.model_copy(update={"corpus": corpus.fingerprint})
    earlier = store.finished(whole.run_id)
    if earlier is None:
        return None
    adopted = {
        **earlier,
        "run_id": spec.run_id,
        "spec": spec.model_dump(mode="json"),
        "adopted_from": whole.run_id,
    }
    store.write(adopted)
    return adopted


class RunStore:
    """One JSON file per run under ``root``: ``<run_id>.json``, replaced atomically, and
    ``<run_id>.lease`` while a process trains the run (``proxies.leases``).

    ``create``: make ``root`` when it is missing; False (a task on a worker) raises a DataError
    instead, so that a worker that cannot see the store never writes to an empty one of its own.
    ``lease_times``: heartbeat, staleness and polling of the leases (tests shorten them).
    """

    def __init__(
        self, root: str | Path, *, create: bool = True, lease_times: LeaseTimes | None = None
    ) -> None:
        self.root = Path(root)
        self.lease_times = lease_times or LeaseTimes()
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise DataError(f"run store {self.root} does not exist")

    def path(self, run_id: str) -> Path:
        return self.root / f"{run_id}.json"

    def load(self, run_id: str) -> dict[str, Any] | None:
        path = self.path(run_id)
        return _read_record(path) if path.exists() else None

    def finished(self, run_id: str) -> dict[str, Any] | None:
        """The record if the run ended ok or diverged; failed runs are retried."""
        rec = self.load(run_id)
        return rec if rec is not None and rec["result"]["status"] in FINISHED else None

    def write(self, record: dict[str, Any]) -> Path:
        return write_json(self.path(record["run_id"]), record, indent=1, fsync=True)

    def leases(self) -> RunLeases:
        """A set of leases for one call to take, keep alive and release (a context manager)."""
        return RunLeases(self.root, self.lease_times)

    def lease_holder(self, run_id: str) -> Holder | None:
        """Who holds a live lease on ``run_id`` now; None when nobody does (or the holder is
        still writing the lease)."""
        state = read_lease(lease_path(self.root, run_id), self.lease_times)
        return state.holder if state is not None and state.live else None

    def records(self, run_ids: set[str] | None = None) -> list[dict[str, Any]]:
        """Every record in run-id order, or those of ``run_ids`` that exist."""
        if run_ids is None:
            paths = sorted(self.root.glob("*.json"))
        else:
            paths = [p for p in map(self.path, sorted(run_ids)) if p.exists()]
        return [_read_record(p) for p in paths]


def _read_record(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"run record {path} is corrupt ({err}); delete it to rerun") from None


def write_run_list(runs: Sequence[tuple[str, RunSpec]], folder: str | Path) -> Path:
    """Write (label, spec) pairs as ``<folder>/<content hash>.json`` (atomic); returns the path.

    A sweep's flow takes this path, not the specs: flow parameters travel with every task a
    distributed runner ships (and are stored by the API), so they are kept small.
    """
    payload = [{"label": label, "spec": spec.model_dump(mode="json")} for label, spec in runs]
    text = json.dumps(payload, sort_keys=True, indent=1)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    if not path.exists():
        atomic_write_bytes(path, text.encode())
    return path


def read_run_list(path: str | Path) -> list[tuple[str, RunSpec]]:
    """The (label, spec) pairs of a run-list file written by ``write_run_list``."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
        return [(str(item["label"]), RunSpec.model_validate(item["spec"])) for item in payload]
    except FileNotFoundError:
        raise DataError(f"run-list file {path} does not exist") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise DataError(f"run-list file {path} is not a list of runs: {err}") from None


def execute_run(
    spec: RunSpec,
    corpus: TokenCorpus,
    store: RunStore,
    *,
    extra: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    device: str | None = None,
    wait: bool = True,
) -> tuple[dict[str, Any], bool]:
    """Run ``spec`` unless its finished result exists; returns (record, computed_now).
    ``device``: train there instead of on ``spec.train.device`` (the run id is unchanged).

    The run trains under its lease (``proxies.leases``), so processes sharing the store train
    it once. When another process holds the lease: with ``wait``, block until it lets go and
    return its record as not computed here (or train the run, if the holder died or left no
    new record); without ``wait``, raise ``RunLeased`` at once.
    """
    run_id = spec.run_id
    done = finished_record(spec, store, corpus)
    if done is not None:
        return done, False
    with store.leases() as leases:
        done = _claim(run_id, store, leases, wait=wait, log=log)
        if done is not None:
            return done, False
        return _train_claimed(spec, corpus, store, extra=extra, log=log, device=device), True


def _claim(
    run_id: str,
    store: RunStore,
    leases: RunLeases,
    *,
    wait: bool,
    log: Callable[[str], None] | None,
) -> dict[str, Any] | None:
    """Take ``run_id``'s lease in ``leases`` (None: this call holds it and trains the run), or
    return the record that makes training needless: a finished one, or one another process
    wrote while this one waited (its attempt, failed included: retried on the next rerun,
    not twice in one sweep). Without ``wait``, a live lease elsewhere raises ``RunLeased``."""
    while True:
        done = store.finished(run_id)
        if done is not None:
            return done
        before = store.load(run_id)
        if leases.take(run_id):
            done = store.finished(run_id)  # finished by another between the check and the lease
            if done is not None:
                leases.release(run_id)
            return done
        holder = store.lease_holder(run_id)
        if not wait:
            raise RunLeased(run_id, holder)
        if log is not None:
            log(f"run {run_id} is being trained by {holder or 'another process'}: waiting")
        wait_released(store.root, run_id, store.lease_times)
        after = store.load(run_id)
        if after is not None and after != before:
            return after
        # Released without a new record, or a stale lease that another process is breaking:
        # try again shortly, not in a tight loop.
        time.sleep(store.lease_times.poll_seconds)


def _train_claimed(
    spec: RunSpec,
    corpus: TokenCorpus,
    store: RunStore,
    *,
    extra: dict[str, Any] | None,
    log: Callable[[str], None] | None,
    device: str | None,
) -> dict[str, Any]:
    """Train ``spec``, whose lease the caller holds, and write its record."""
    run_id = spec.run_id
    # Imported here: torch and transformers take seconds to import, and a finished run (all of
    # them, on a rerun) never trains.
    from proxies.train import TrainResult, train_model

    check_corpus([spec], corpus)
    started = time.time()
    try:
        result = train_model(
            corpus,
            train_domains=spec.domains,
            weights=np.asarray(spec.weights),
            eval_domains=spec.eval_domains,
            cfg=spec.train,
            seed=spec.seed,
            evaluator=spec.evaluator,
            log=log,
            device=device,
        )
    except Exception as err:  # recorded as failed so the sweep goes on; retried on rerun
        result = TrainResult(
            status="failed",
            error=f"{type(err).__name__}: {err}",
            wall_seconds=time.time() - started,
        )
        if log is not None:
            log(traceback.format_exc())
    record = {
        "run_id": run_id,
        "spec": spec.model_dump(mode="json"),
        "result": result.to_json(),
        "started_at": started,
        "finished_at": time.time(),
        **(extra or {}),
    }
    store.write(record)
    return record


def pack_key(spec: RunSpec) -> str:
    """What runs must share to train in one pack: everything but their mixture and seed (the
    corpus, domains, evaluation, training config and evaluator)."""
    return json.dumps(spec.model_dump(mode="json", exclude={"weights", "seed"}), sort_keys=True)


#: ``train.pack: auto`` per device type: the pack size that ``python -m benchmarks run
#: pack_throughput`` measured fastest (BENCHMARKS.md, "Packed proxies"). On CPU, large packs
#: spill the activations out of the caches and the per-token element-wise work dominates; on a
#: GPU one small proxy leaves the device idle, so packs are large.
AUTO_PACK = {"cpu": 4, "cuda": 32}


def pack_size(train: TrainConfig, *, runs: int, workers: int, device_type: str) -> int:
    """Runs per pack for ``runs`` runs of ``train`` on ``workers`` parallel tasks: ``train.pack``
    (``auto``: ``AUTO_PACK`` of the device type), never more than keeps every worker busy."""
    size = AUTO_PACK.get(device_type, 1) if train.pack == "auto" else int(train.pack)
    return max(1, min(size, -(-runs // max(1, workers))))


def plan_packs(specs: Sequence[RunSpec], size: int) -> list[list[int]]:
    """Indices of ``specs`` grouped into packs of at most ``size`` runs that share their
    ``pack_key``, in the order the runs come; each group's runs are split evenly (sizes differ
    by at most one), so no pack is left with a single straggler."""
    if size < 1:
        raise ValueError(f"pack size must be >= 1, got {size}")
    groups: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault(pack_key(spec), []).append(i)
    packs: list[list[int]] = []
    for members in groups.values():
        n = -(-len(members) // size)  # packs of this group
        packs.extend(members[j::n] for j in range(n))
    return packs


def execute_pack(
    specs: Sequence[RunSpec],
    corpus: TokenCorpus,
    store: RunStore,
    *,
    extras: Sequence[dict[str, Any]] | None = None,
    log: Callable[[str], None] | None = None,
    device: str | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    wait: bool = True,
) -> list[tuple[dict[str, Any], bool]]:
    """Train ``specs`` (one ``pack_key``) as one pack (``proxies.pack.train_pack``), each run
    unless its finished record exists; returns (record, computed_now) per spec, in order.

    Each member's record is written as soon as its result is known, as ``execute_run`` writes
    a solo run's, with the same run id, so a pack killed mid-way loses only its unfinished
    members and a rerun trains only those. A pack that fails as a whole (an exception in the
    trainer) records each unfinished member as failed, to be retried on rerun.
    ``on_record`` is called with each record as it is written.

    Each member trains under its lease (``proxies.leases``), released as soon as its record is
    written. A member whose lease another process holds is left out of the pack: with ``wait``,
    it is waited for once the pack has trained (``execute_run``); without, it is left out of
    the result, which then lists the other specs, in order.
    """
    extras = list(extras) if extras is not None else [{} for _ in specs]
    if len(extras) != len(specs):
        raise ValueError(f"{len(specs)} specs but {len(extras)} extras")
    keys = {pack_key(s) for s in specs}
    if len(keys) > 1:
        raise DataError("the runs of a pack differ in more than their mixture and seed")
    out: list[tuple[dict[str, Any], bool] | None] = [None] * len(specs)
    elsewhere: list[int] = []
    with store.leases() as leases:
        todo: list[int] = []
        for i, spec in enumerate(specs):
            done = finished_record(spec, store, corpus)
            if done is not None:
                out[i] = (done, False)
                continue
            try:
                done = _claim(spec.run_id, store, leases, wait=False, log=log)
            except RunLeased:
                elsewhere.append(i)
                continue
            if done is not None:
                out[i] = (done, False)
            else:
                todo.append(i)
        if todo:
            _train_pack_claimed(
                [specs[i] for i in todo],
                corpus,
                store,
                leases,
                extras=[extras[i] for i in todo],
                log=log,
                device=device,
                on_record=on_record,
                slots=todo,
                results=out,
            )
    if not wait:
        return [o for o in out if o is not None]
    for i in elsewhere:
        record, computed = execute_run(
            specs[i], corpus, store, extra=extras[i], log=log, device=device, wait=True
        )
        out[i] = (record, computed)
        if computed and on_record is not None:
            on_record(record)
    return [o for o in out if o is not None]


def _train_pack_claimed(
    specs: Sequence[RunSpec],
    corpus: TokenCorpus,
    store: RunStore,
    leases: RunLeases,
    *,
    extras: Sequence[dict[str, Any]],
    log: Callable[[str], None] | None,
    device: str | None,
    on_record: Callable[[dict[str, Any]], None] | None,
    slots: Sequence[int],
    results: list[tuple[dict[str, Any], bool] | None],
) -> None:
    """Train ``specs``, whose leases ``leases`` holds, as one pack; member ``pos``'s
    (record, True) goes to ``results[slots[pos]]`` as soon as it is written, and its lease is
    released then."""
    from proxies.pack import Member, train_pack
    from proxies.train import TrainResult

    first = specs[0]
    check_corpus(specs, corpus)
    started = time.time()

    def write(pos: int, result: TrainResult) -> None:
        record = {
            "run_id": specs[pos].run_id,
            "spec": specs[pos].model_dump(mode="json"),
            "result": result.to_json(),
            "started_at": started,
            "finished_at": time.time(),
            "pack": {"size": len(specs), "member": pos},
            **extras[pos],
        }
        store.write(record)
        leases.release(record["run_id"])
        results[slots[pos]] = (record, True)
        if on_record is not None:
            on_record(record)

    try:
        train_pack(
            corpus,
            train_domains=first.domains,
            members=[Member(s.seed, np.asarray(s.weights)) for s in specs],
            eval_domains=first.eval_domains,
            cfg=first.train,
            evaluator=first.evaluator,
            device=device,
            on_result=write,
            log=log,
        )
    except Exception as err:  # recorded as failed so the sweep goes on; retried on rerun
        if log is not None:
            log(traceback.format_exc())
        for pos in range(len(specs)):
            if results[slots[pos]] is None:
                failed = TrainResult(
                    status="failed",
                    error=f"{type(err).__name__}: {err}",
                    wall_seconds=time.time() - started,
                )
                write(pos, failed)
