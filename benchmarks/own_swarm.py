"""A fresh pool no mixopt choice has seen: 256 proxies of the demo corpus, replayed and fitted.

Every setting of mixopt's surrogates and optimizers was chosen on RegMix's and Olmix's released
runs, and by now every target of those pools has been looked at (benchmarks/replay_generality.py
and its second set), so none of them can say any more whether the shipped defaults generalize.
This script makes a new pool with mixopt itself and tests the shipped defaults on it, unchanged.

The pool (made once, committed with its command in data/mixopt_demo_swarm/SOURCE.md):
``mixopt sweep --config configs/demo.yaml --set sweep.n_runs=256`` on the demo's real-text
corpus: 256 mixtures over the 8 training domains sampled from the demo's prior (Dirichlet around
the token counts, RegMix-style), plus the uniform and natural mixtures, each a micro proxy (the
demo's own proxy: ~0.1M non-embedding parameters, 250k tokens), evaluated on all 9 domains'
validation splits. 258 runs, 8 domains, 9 losses.

Fixed before the pool was trained (2026-11-30, session 9), not to be pruned after:

- targets: each of the 9 validation losses (``val_loss/<domain>``), the held-out ``tech_docs``
  (the demo's target) among them;
- replay: random (exact expectation), ``regmix`` (half the budget random, then the rest in the
  default surrogate's predicted order) and ``bo`` (the shipped defaults: ``gp_hybrid``, 4 random
  runs, one run per round); budget 64, 10 repeats, seed 0; top 1% = the 3 best of 258 runs;
- fit: Spearman x100 on the runs not trained on, train sizes 32 and 128, 3 random subsets, for
  ``ensemble`` (the default), ``regmix_lgbm`` (RegMix's settings), ``lightgbm``, ``ridge`` and
  ``gp_hybrid``.

    .venv/bin/python benchmarks/own_swarm.py          # replay + fit, about 40 minutes, 2 cores

Writes benchmarks/results/own_swarm.json and .md.
"""
