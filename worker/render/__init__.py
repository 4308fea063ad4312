"""Deterministic synthetic data: retail-shelf instance sets and MNIST-like digits (see README.md).

Entry points: `dataset.render_item` / `dataset.reproduce_item` (one item and its consensus
bytes), `shard.render_shard` / `shard.render_dataset` (one artifact: files + manifest), and
`digits.render_digits` for in-memory digit batches.
"""
