"""`neuro task verify` on render outputs: a tampered file fails in one line naming file and item;
a manifest committing to a wrong item exits 2 and writes the fraud proof."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.task import task_app
from worker.artifact import read_manifest, seal
from worker.render.item import item_hash
from worker.runner import run_task

RENDER = {"task": "render", "seed": 3, "spec": {"kind": "digits", "count": 12, "size": 16}}
runner = CliRunner()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-verify") / "digits"
    run_task("render", RENDER, out, timeout_s=120)
    return out


def test_a_changed_image_fails_naming_file_and_item(rendered: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    shutil.copytree(rendered, out)
    png = out / "shard-0000" / "images" / "00000007.png"
    data = bytearray(png.read_bytes())
    data[-20] ^= 1  # inside the IEND/IDAT tail: same size, other bytes
    png.write_bytes(bytes(data))
    result = runner.invoke(task_app, ["verify", str(out), "--samples", "12"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "file-hash" in lines[0] and "item 7" in lines[0]
    assert "shard-0000/images/00000007.png" in lines[0]


def test_a_wrong_commitment_exits_2_with_a_fraud_proof(rendered: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    shutil.copytree(rendered, out)
    manifest = read_manifest(out)
    items = tuple(replace(i, check=item_hash(b"forged")) if i.index == 4 else i
                  for i in manifest.items)
    (out / "manifest.json").write_bytes(
        seal(manifest.kind, manifest.meta, manifest.files, items).encode())
    proof = tmp_path / "proof.json"
    result = runner.invoke(task_app, ["verify", str(out), "--samples", "12", "--beacon", "ab",
                                      "--proof", str(proof)])
    assert result.exit_code == 2 and "item 4" in result.output
    written = json.loads(proof.read_text())
    assert written["index"] == 4 and written["leaf"]["position"] == 4
