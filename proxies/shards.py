"""Token files read in place: a range of one memory-mapped shard (``ShardPiece``), and a
read-only view that joins many of them into one array (``ShardedTokens``).

The view supports what the batcher and the evaluation windows use of an array: ``len``,
``dtype`` and ``view[index_array]`` for integer index arrays of any shape, where a window may
cross from one shard into the next. Nothing is copied until it is indexed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

#: Shards kept memory-mapped at once by one view. Each open map holds a file descriptor, and a
#: domain can have thousands of shards; reopening one costs tens of microseconds.
MAX_OPEN_SHARDS = 64


class TokenArray(Protocol):
    """The part of a 1-D ndarray of token ids that training and evaluation read; an ndarray,
    a memmap and a ``ShardedTokens`` all have it."""

    @property
    def dtype(self) -> np.dtype: ...

    def __len__(self) -> int: ...

    def __getitem__(self, key: Any) -> Any: ...

    def __array__(self) -> np.ndarray: ...


@dataclass(frozen=True)
class ShardPiece:
    """Tokens ``[start, stop)`` of one token file, read as ``dtype`` past ``offset`` bytes (a
    ``.npy`` header; 0 for a flat file). ``size`` is the file's byte size when it was read."""

    path: str
    dtype: str
    offset: int
    start: int
    stop: int
    size: int

    @property
    def n_tokens(self) -> int:
        return self.stop - self.start

    def open(self) -> np.ndarray:
        """The piece memory-mapped read-only (a view of the file's map, no copy)."""
        dtype = np.dtype(self.dtype)
        count = (self.size - self.offset) // dtype.itemsize
        mm = np.memmap(self.path, dtype=dtype, mode="r", offset=self.offset, shape=(count,))
        return mm[self.start : self.stop]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardPiece:
        return cls(**data)


def open_pieces(pieces: Sequence[ShardPiece]) -> np.ndarray | ShardedTokens:
    """One piece's memory map itself, or a view of several."""
    if len(pieces) == 1:
        return pieces[0].open()
    return ShardedTokens(pieces)


class ShardedTokens:
    """Read-only concatenation of shard pieces, indexed like the 1-D array they would form.

    Global positions map to pieces by ``np.searchsorted`` over the pieces' start offsets, and
    each piece's positions are gathered from its memory map in one fancy-indexing read.
    """

    def __init__(self, pieces: Sequence[ShardPiece]) -> None:
        if not pieces:
            raise ValueError("a sharded view needs at least one piece")
        dtypes = {p.dtype for p in pieces}
        if len(dtypes) != 1:
            raise ValueError(f"pieces of one view must share a dtype, got {sorted(dtypes)}")
        self._pieces = tuple(pieces)
        lengths = np.array([p.n_tokens for p in pieces], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self._len = int(lengths.sum())
        self._dtype = np.dtype(pieces[0].dtype)
        self._open: OrderedDict[int, np.ndarray] = OrderedDict()

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def shape(self) -> tuple[int]:
        return (self._len,)

    @property
    def ndim(self) -> int:
        return 1

    @property
    def pieces(self) -> tuple[ShardPiece, ...]:
        return self._pieces

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"ShardedTokens({self._len} tokens in {len(self._pieces)} pieces, {self._dtype})"

    def __getitem__(self, key: Any) -> Any:
        """``view[i]`` (a scalar), ``view[a:b:s]`` or ``view[index_array]`` (an ndarray of the
        index array's shape); out-of-range positions raise IndexError like an ndarray."""
        if isinstance(key, slice):
            return self._gather(np.arange(*key.indices(self._len), dtype=np.int64))
        if isinstance(key, (int, np.integer)):
            return self._gather(np.array([key], dtype=np.int64))[0]
        idx = np.asarray(key)
        if idx.dtype == bool or not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"ShardedTokens takes integer indices or slices, got {idx.dtype}")
        return self._gather(idx.astype(np.int64, copy=False))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """Every token in one in-memory array (reads the whole view)."""
        out = np.concatenate([p.open() for p in self._pieces])
        return out if dtype is None else out.astype(dtype)

    def _gather(self, idx: np.ndarray) -> np.ndarray:
        flat = idx.reshape(-1)
        if flat.size == 0:
            return np.empty(idx.shape, dtype=self._dtype)
        lo, hi = int(flat.min()), int(flat.max())
        if lo < 0:  # negative positions count from the end, as in an ndarray
            flat = np.where(flat < 0, flat + self._len, flat)
            lo, hi = int(flat.min()), int(flat.max())
        if lo < 0 or hi >= self._len:
            bad = idx.reshape(-1)[(flat < 0) | (flat >= self._len)][0]
            raise IndexError(f"index {bad} is out of bounds for {self._len} tokens")
        first, last = np.searchsorted(self._starts, [lo, hi], side="right") - 1
        if first == last:  # every position in one piece: a single read
            return self._piece(int(first))[flat - self._starts[first]].reshape(idx.shape)
        positions = flat.reshape(idx.shape)
        if positions.ndim == 2 and _rows_are_windows(positions):
            return self._gather_windows(positions)
        return self._gather_flat(flat, int(first)).reshape(idx.shape)

    def _gather_flat(self, flat: np.ndarray, first: int) -> np.ndarray:
        """Any positions (in range, non-negative), one read per piece they fall in."""
        which = np.searchsorted(self._starts, flat, side="right") - 1  # piece of each position
        used = np.flatnonzero(np.bincount(which - first)) + first
        out = np.empty(flat.shape, dtype=self._dtype)
        for piece in used.tolist():
            sel = which == piece
            out[sel] = self._piece(piece)[flat[sel] - self._starts[piece]]
        return out

    def _gather_windows(self, idx: np.ndarray) -> np.ndarray:
        """(k, w) rows of consecutive positions, as the batcher and the evaluation windows ask:
        pieces are found from each row's ends, so a row inside one piece costs no per-position
        search; only the rows that cross a boundary are gathered position by position."""
        ends = np.searchsorted(self._starts, idx[:, [0, -1]], side="right") - 1  # (k, 2)
        out = np.empty(idx.shape, dtype=self._dtype)
        inside = ends[:, 0] == ends[:, 1]
        for piece in np.unique(ends[inside, 0]).tolist():
            rows = np.flatnonzero(inside & (ends[:, 0] == piece))
            out[rows] = self._piece(piece)[idx[rows] - self._starts[piece]]
        crossing = np.flatnonzero(~inside)
        if crossing.size:
            part = idx[crossing].reshape(-1)
            first = int(ends[crossing, 0].min())
            out[crossing] = self._gather_flat(part, first).reshape(crossing.size, -1)
        return out

    def _piece(self, i: int) -> np.ndarray:
        """Piece ``i`` memory-mapped, the least recently used map closed past the limit."""
        arr = self._open.get(i)
        if arr is None:
            # a plain ndarray view of the map: indexing it skips np.memmap's per-call wrapping
            arr = np.asarray(self._pieces[i].open())
            self._open[i] = arr
            if len(self._open) > MAX_OPEN_SHARDS:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(i)
        return arr


def _rows_are_windows(idx: np.ndarray) -> bool:
    """Whether every row of a 2-D index array is ``start, start + 1, ..., start + w - 1``."""
    return bool((idx == idx[:, :1] + np.arange(idx.shape[1])).all())
