"""Training on torch: model zoo, deterministic loop, proof-of-learning, safetensors weights.

Nothing is imported here on purpose: the daemon and the CLI import `worker` without torch, and
only a task subprocess that trains pays for `import torch` (by importing the submodules).
"""
