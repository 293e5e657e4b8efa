"""Measuring surrogates and optimizers on existing runs.

- ``cross_validate`` (``cv``): fit a surrogate on random subsets of N runs, score its
  predictions on the held-out runs of the same table (or on separate test tables) with
  ``score``: Spearman, Pearson, MAE. ``kfold_predictions``: the out-of-fold predictions the
  pipeline scores.
- ``replay`` (``replay``): run an optimizer in pool mode on a table of finished runs, looking
  the results up instead of training anything: runs until a pool top-1% mixture is run, simple
  regret, and the saving over uniform random draws (exact, ``random_runs_to_top``).

Both are deterministic for a given seed: every repeat draws from its own child of
``numpy.random.SeedSequence(seed)``.
"""

from __future__ import annotations

from mixtures.evaluation.cv import (
    MIN_TEST_RUNS,
    SCORES,
    cross_validate,
    kfold_predictions,
    score,
    summarize_cv,
)
from mixtures.evaluation.replay import (
    plot_regret,
    random_runs_to_top,
    random_start_floor,
    replay,
    summarize_replay,
)

__all__ = [
    "MIN_TEST_RUNS",
    "SCORES",
    "cross_validate",
    "kfold_predictions",
    "plot_regret",
    "random_runs_to_top",
    "random_start_floor",
    "replay",
    "score",
    "summarize_cv",
    "summarize_replay",
]
