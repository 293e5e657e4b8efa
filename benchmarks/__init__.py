"""mixopt's benchmark suite: named, parameterised measurements of the product.

``python -m benchmarks list | run CASE [--set key=value ...] [--out DIR] | render | smoke``;
BENCHMARKS.md shows the figures and how each was produced.
"""
