"""The active-learning loop: tune generator ranges so models trained on synthetic data do well
on real data, measured on a small real tuning set and reported on a held-out one.

`space` maps optimizer parameters onto DigitsSpec ranges, `loop` runs the rounds (optuna TPE)
and the final trainings, `report` writes the JSON report and the accuracy plot.
"""
