"""Batches drawn by mixture weights from memory-mapped token arrays (vectorized)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from mixtures.errors import DataError
from proxies.config import TrainConfig


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
        # Weights read back from a run spec are rounded (8 decimals), so they can sum to 1 +- 1e-8,
        # outside numpy's tolerance for ``choice(p=...)``: renormalize what passed the check above.
        self._w = w / w.sum()
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


def eval_windows(
    arr: np.ndarray, *, seq_len: int, max_tokens: int, layout: str = "spread"
) -> torch.Tensor:
    """Fixed, non-overlapping (N, T+1) windows of a validation array, N = max_tokens // T.

    ``layout="spread"``: the windows are evenly spaced over the whole array, so the loss
    represents every part of the split (its documents are concatenated in order, and the first
    ``max_tokens`` can be one or two documents). ``"head"``: the first N windows.
    """
    n = min(len(arr) - 1, max_tokens) // seq_len
    if n < 1:
        raise DataError(f"validation array of {len(arr)} tokens is shorter than one window")
    if layout == "head":
        starts = np.arange(n) * seq_len
    elif layout == "spread":
        # n windows of seq_len + 1 tokens that may share their last token with the next start
        starts = np.linspace(0, len(arr) - seq_len - 1, n).astype(np.int64)
    else:
        raise DataError(f"unknown eval window layout {layout!r}; expected 'spread' or 'head'")
    idx = starts[:, None] + np.arange(seq_len + 1)
    return torch.from_numpy(np.asarray(arr[idx], dtype=np.int64))


def eval_batches(arr: np.ndarray, cfg: TrainConfig) -> Iterator[torch.Tensor]:
    """The run's evaluation windows of a validation array (``eval_windows`` with ``cfg``'s
    ``seq_len``, ``eval_tokens`` and ``eval_layout``), ``eval_batch_size(cfg)`` at a time."""
    windows = eval_windows(
        arr, seq_len=cfg.seq_len, max_tokens=cfg.eval_tokens, layout=cfg.eval_layout
    )
    size = eval_batch_size(cfg)
    for start in range(0, len(windows), size):
        yield windows[start : start + size]


def eval_batch_size(cfg: TrainConfig) -> int:
    """Sequences per evaluation batch: ``cfg.eval_batch_size``, at most ``cfg.micro_batch_size``
    when that is set, so that a config sized to fit a device in training fits it in evaluation.
    """
    if cfg.micro_batch_size is None:
        return cfg.eval_batch_size
    return min(cfg.eval_batch_size, cfg.micro_batch_size)
