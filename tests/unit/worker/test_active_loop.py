"""The active-learning loop at micro size: it runs, reports per round, never steers by held-out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from worker.active.loop import LoopConfig, RoundResult, best_round, run_loop
from worker.active.report import write_report
from worker.active.space import KNOBS, params_of, suggest
from worker.realdata import DigitSet, RealSplit
from worker.render.digits import DigitsSpec


class _Corner:
    """Answers every suggestion with one end of its range: the space's extreme corners."""

    def __init__(self, high: bool) -> None:
        self.high = high

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return high if self.high else low


def _small_split() -> RealSplit:
    from worker.realdata import load_split

    full = load_split()
    keep = np.arange(0, len(full.heldout), 49)  # 100 held-out digits, all classes
    heldout = DigitSet(full.heldout.images[keep], full.heldout.labels[keep])
    return RealSplit(full.tuning, heldout, full.tuning_index, full.heldout_index[keep])


def test_the_starting_spec_is_the_neutral_point_and_corners_are_valid() -> None:
    base = DigitsSpec(thickness_dpx=(15, 35), shear_pct=(-30, 10), warp=(0, 50),
                      point_jitter=(0, 30), blur_pct=20).model_dump()
    params = params_of(base)

    class Replay:
        def suggest_int(self, name: str, low: int, high: int) -> int:
            assert low <= params[name] <= high
            return params[name]

    assert suggest(Replay(), base) == {knob.field: base[knob.field] for knob in KNOBS}
    for high in (False, True):
        corner = suggest(_Corner(high), base)
        DigitsSpec(**corner)  # every trial is a valid spec
        assert corner != {knob.field: base[knob.field] for knob in KNOBS}
    wide = suggest(_Corner(True), base)
    assert wide["thickness_dpx"] == (15 + 8 - 8, 35 + 8 + 8)  # shifted by 8, widened by 8
    narrow = suggest(_Corner(False), base)
    assert narrow["thickness_dpx"] == (15 - 8 + 8, 35 - 8 - 8)  # shifted by -8, narrowed by 8


def _result(index: int, objective: float, heldout: float, repeat: int = 0) -> RoundResult:
    return RoundResult(index, {}, objective, heldout_accuracy=heldout, train_loss=1.0,
                       seconds=1.0, objective=objective, repeat=repeat)


def test_best_round_ignores_heldout_and_prefers_confirmed_means() -> None:
    searched = [_result(0, 0.5, 0.9), _result(1, 0.6, 0.1), _result(2, 0.6, 0.2)]
    assert best_round(searched).round == 1  # ties go to the earlier round
    confirmed = searched + [_result(1, 0.3, 0.99, repeat=1), _result(0, 0.55, 0.1, repeat=1)]
    # round 1 was lucky once (mean 0.45); round 0 holds up (mean 0.525); round 2 is unconfirmed
    assert best_round(confirmed).round == 0


def test_two_round_micro_loop_reports_each_round(tmp_path: Path) -> None:
    config = LoopConfig(rounds=2, items=256, epochs=1, final_items=256, final_epochs=1,
                        width=4, depth=1, batch_size=32, mix_real_repeats=2, confirm=1,
                        final_seeds=1)
    seen: list[int] = []
    report = run_loop(config, _small_split(), on_round=lambda r: seen.append(r.round))
    assert seen[:2] == [0, 1] and len(seen) == 3  # two rounds, then one confirmation
    assert [r.repeat for r in report.rounds] == [0, 0, 1]
    for result in report.rounds:
        assert 0.0 <= result.tuning_accuracy <= 1.0 and 0.0 <= result.heldout_accuracy <= 1.0
        DigitsSpec(**result.spec_fields)
    # round 0 is the starting spec verbatim; round 1 is the optimizer's proposal
    assert report.rounds[0].spec_fields == {}
    assert set(report.finals) == {"before", "after", "mixed"}
    json_path, png_path = write_report(report, tmp_path)
    stored = json.loads(json_path.read_text())
    assert len(stored["rounds"]) == 3 and stored["best_round"] == report.rounds[2].round
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_degenerate_range_can_open_and_an_overnarrowed_one_collapses() -> None:
    from worker.active.space import RangeKnob

    knob = RangeKnob("rotation_deg", 5, (-90, 90))
    assert knob.build({"rotation_deg.shift": 0, "rotation_deg.widen": 5}, (0, 0)) == (-5, 5)
    assert knob.build({"rotation_deg.shift": 2, "rotation_deg.widen": -5}, (-3, 3)) == (2, 2)
    assert knob.build({"rotation_deg.shift": 5, "rotation_deg.widen": 5}, (80, 88)) == (80, 90)


def test_a_second_stage_starts_from_the_first_stages_choice() -> None:
    config = LoopConfig(rounds=2, items=128, epochs=1, width=4, depth=1, batch_size=32,
                        confirm=1, stages=2)
    report = run_loop(config, _small_split(), with_finals=False)
    first = [r for r in report.rounds if r.stage == 0]
    second = [r for r in report.rounds if r.stage == 1]
    assert len(first) == len(second) == 3 and report.finals == {}
    chosen = best_round(first)
    assert second[0].round == 2 and second[0].spec_fields == chosen.spec_fields
