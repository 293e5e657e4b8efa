"""Batches drawn by mixture weights from memory-mapped token arrays (vectorized)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mixtures.errors import DataError


class MixtureBatcher:
    """Draws (B, T+1) windows: the domain of each row by the mixture weights, its offset uniform.

    One ``rng.choice`` picks the domains of the whole batch and one fancy-indexing gather per
    domain reads the windows, so there is no per-example Python loop.
    """

    def __init__(
        self,
        arrays: Sequence[np.ndarray],
        weights: np.ndarray,
        *,
        seq_len: int,
        batch_size: int,
        rng: np.random.Generator,
    ) -> None:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(arrays),):
            raise DataError(f"{len(arrays)} token arrays but {w.shape} weights")
        if not np.isclose(w.sum(), 1.0, atol=1e-6) or (w < 0).any():
            raise DataError(f"weights must be a probability vector, got {w.tolist()}")
        for i, arr in enumerate(arrays):
            if w[i] > 0 and len(arr) < seq_len + 2:
                raise DataError(
                    f"domain #{i} has {len(arr)} tokens, fewer than one window of {seq_len + 1}"
                )
        self._arrays = list(arrays)
        self._w = w
        self._T = seq_len
        self._B = batch_size
        self._rng = rng
        self._window = np.arange(seq_len + 1)

    def next(self) -> torch.Tensor:
        """One batch of token ids, shape (B, T+1), dtype int64."""
        choice = self._rng.choice(len(self._w), size=self._B, p=self._w)
        out = np.empty((self._B, self._T + 1), dtype=np.int64)
        for d in np.unique(choice):
            rows = np.flatnonzero(choice == d)
            arr = self._arrays[d]
            starts = self._rng.integers(0, len(arr) - self._T - 1, size=rows.size)
            out[rows] = arr[starts[:, None] + self._window]  # (k, T+1)
        return torch.from_numpy(out)


def eval_windows(arr: np.ndarray, *, seq_len: int, max_tokens: int) -> torch.Tensor:
    """Fixed, non-overlapping (N, T+1) windows from the start of a validation array."""
    n = min(len(arr) - 1, max_tokens) // seq_len
    if n < 1:
        raise DataError(f"validation array of {len(arr)} tokens is shorter than one window")
    idx = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)
    return torch.from_numpy(np.asarray(arr[idx], dtype=np.int64))
