"""The suite's cases by name, in the order BENCHMARKS.md shows them."""

from __future__ import annotations

from benchmarks.suite import Case


def all_cases() -> dict[str, Case]:
    from benchmarks import (
        demo,
        merge_proxy,
        pack_throughput,
        prefect_overhead,
        prepare_throughput,
        replay,
        surrogate_fit,
        train_memory,
        trainer_throughput,
    )

    cases = [
        *demo.CASES,
        *trainer_throughput.CASES,
        *pack_throughput.CASES,
        *merge_proxy.CASES,
        *train_memory.CASES,
        *prepare_throughput.CASES,
        *prefect_overhead.CASES,
        *surrogate_fit.CASES,
        *replay.CASES,
    ]
    return {c.name: c for c in cases}
