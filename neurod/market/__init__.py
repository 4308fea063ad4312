"""The market agents of a node: bids, the worker and client agents (strategy, not consensus)."""
