"""Evaluation of trained models on a buyer's held-out real data, with plots.

`metrics` (COCOeval mAP, accuracy and confusion matrix) and `plots` (matplotlib, Agg) need no
torch; `run` loads safetensors weights, predicts and writes ``metrics.json`` plus PNG plots.
"""
