"""The identity of a merge's trunk and experts (``proxies.merge``), without torch: configs
and flows name the runs before anything trains."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from mixtures.errors import DataError
from proxies.config import TrainConfig, hashed_train
from proxies.runs import WEIGHT_DECIMALS
from proxies.tokens import TokenCorpus


class MergeSpec(BaseModel):
    """Everything that determines the trunk and the experts; their ids hash it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus: str
    domains: tuple[str, ...]
    """The training domains, one expert each, in this order."""
    trunk_weights: tuple[float, ...]
    trunk_fraction: float
    train: TrainConfig
    seed: int

    @field_validator("trunk_weights")
    @classmethod
    def _round(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(round(float(x), WEIGHT_DECIMALS) for x in v)

    @field_validator("trunk_fraction")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0 <= v < 1:
            raise ValueError(f"trunk_fraction must be in [0, 1), got {v}")
        return v

    def hashed_data(self) -> dict[str, Any]:
        """The spec's JSON with the training config as run ids hash it (``RunSpec``)."""
        return {**self.model_dump(mode="json"), "train": hashed_train(self.train)}

    @property
    def trunk_id(self) -> str:
        return digest({"stage": "trunk", **self.hashed_data()})

    def expert_id(self, domain: str) -> str:
        if domain not in self.domains:
            raise DataError(f"no expert for domain {domain!r}: the experts are {self.domains}")
        return digest({"stage": "expert", "domain": domain, **self.hashed_data()})

    @property
    def merge_id(self) -> str:
        """The id of the whole set of experts (names the merged estimates)."""
        return digest({"stage": "merge", **self.hashed_data()})

    @property
    def trunk_steps(self) -> int:
        return int(round(self.trunk_fraction * self.train.steps))

    @property
    def cost_runs(self) -> float:
        """Training steps of the trunk and every expert over one proxy run's steps."""
        total = self.train.steps
        return (self.trunk_steps + len(self.domains) * (total - self.trunk_steps)) / total


def experts_fingerprint(corpus: TokenCorpus, domains: Sequence[str]) -> str:
    """The corpus fingerprint the experts' ids hash: that of what they read, the train splits
    of ``domains`` (``TokenCorpus.fingerprint_for``)."""
    return corpus.fingerprint_for(domains, [])


def digest(data: dict[str, Any]) -> str:
    """The first 16 hex digits of the sha256 of ``data`` as sorted-key JSON (as run ids)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
