"""CenterNet: targets put peaks at box centres, a few steps lower the loss, decoding gives boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from worker.train.batches import flip_shift
from worker.train.centernet import Detections, centernet_loss, decode, encode_targets
from worker.train.data import DetectionData
from worker.train.loop import Progress, train
from worker.train.toydata import TOY_CENTERNET, rectangles_coco, toy_spec


def test_targets_peak_at_the_box_centre_with_size_and_offset() -> None:
    boxes = np.array([[10, 20, 16, 8], [40, 40, 0, 5]], np.float32)  # second is degenerate
    t = encode_targets(boxes, np.array([1, 0]), image_size=64, num_classes=2, max_objects=4)
    assert t["heatmap"].shape == (2, 16, 16)
    assert t["heatmap"][1, 6, 4] == 1.0  # centre (18, 24) / 4 = (4.5, 6.0)
    assert t["heatmap"][0].max() == 0.0
    assert t["mask"].tolist() == [1, 0, 0, 0]
    assert t["size"][0].tolist() == [4.0, 2.0]
    assert t["offset"][0].tolist() == pytest.approx([0.5, 0.0])
    assert t["index"][0] == 6 * 16 + 4


def test_flip_and_shift_move_boxes_with_the_pixels() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    image[1:3, 0:2] = 255
    out, boxes = flip_shift(image, np.array([[0, 1, 2, 2]], np.float32), True, 1, 1)
    ys, xs = np.nonzero(out[..., 0])
    assert boxes.tolist() == [[7, 2, 1, 2]]  # flipped to x=6..8, shifted right and clipped
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (7, 8, 2, 4)


@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rects")
    rectangles_coco(root, 16, side=64, classes=2)
    return root


def test_centernet_trains_a_few_steps_and_decodes_boxes(coco_dir: Path) -> None:
    data = DetectionData.from_coco(coco_dir)
    assert len(data) == 16 and data.num_classes == 2
    events: list[Progress] = []
    spec = toy_spec(TOY_CENTERNET, steps=12, batch_size=8, lr=5e-3, log_every=4,
                    augment={"hflip": True, "shift": 4})
    result = train(spec, data, on_progress=events.append)
    assert events[-1].loss < events[0].loss
    result.model.eval()
    with torch.no_grad():
        outputs = result.model(torch.rand(3, 3, 64, 64))
    assert outputs["heatmap"].shape == (3, 2, 16, 16)
    found = decode(outputs, top_k=10)
    assert isinstance(found, Detections)
    assert found.boxes.shape == (3, 10, 4) and found.scores.shape == (3, 10)
    assert found.classes.max() < 2 and (found.boxes[..., 2:] >= 0).all()
    assert (found.scores[:, :-1] >= found.scores[:, 1:]).all()


def test_decode_recovers_an_encoded_box_exactly() -> None:
    t = encode_targets(np.array([[10, 20, 16, 8]], np.float32), np.array([1]),
                       image_size=64, num_classes=2, max_objects=4)
    size = torch.zeros(1, 2, 16, 16)
    offset = torch.zeros(1, 2, 16, 16)
    size[0, :, 6, 4] = torch.tensor(t["size"][0])
    offset[0, :, 6, 4] = torch.tensor(t["offset"][0])
    heat = torch.logit(torch.tensor(t["heatmap"]).clamp(1e-4, 1 - 1e-4))[None]
    found = decode({"heatmap": heat, "size": size, "offset": offset}, top_k=1)
    assert found.boxes[0, 0].tolist() == pytest.approx([10, 20, 16, 8])
    assert int(found.classes[0, 0]) == 1
    targets = {k: torch.from_numpy(v)[None] for k, v in t.items()}
    perfect = centernet_loss({"heatmap": heat * 50, "size": size, "offset": offset}, targets)
    wrong = centernet_loss({"heatmap": -heat, "size": size * 0, "offset": offset * 0}, targets)
    assert perfect < wrong
