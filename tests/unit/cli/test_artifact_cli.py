"""`neuro artifact`: import, list, show, verify, export, pin, rm on a data dir's store; every
failure one line with its reason and exit 1."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from cli.artifact import artifact_app
from tests.unit.neurod.test_artifact_store import make_artifact

runner = CliRunner()


def neuro(datadir: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(artifact_app, [*args, "--network", "devnet", "--datadir", str(datadir)])
    return result.exit_code, result.output


def test_import_list_show_verify_export_pin_rm(tmp_path: Path) -> None:
    root = make_artifact(tmp_path / "a", "a", [100, 200]).hex()
    datadir = tmp_path / "node"
    code, out = neuro(datadir, "import", str(tmp_path / "a"), "--json")
    assert code == 0 and json.loads(out)["root"] == root
    code, out = neuro(datadir, "list", "--json")
    listed = json.loads(out)
    assert code == 0 and [a["root"] for a in listed["artifacts"]] == [root] and listed["bytes"] > 300
    code, out = neuro(datadir, "show", root, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["items"] == 2 and {f["path"] for f in shown["file_list"]} == {
        "items/0000.bin", "items/0001.bin", "spec.json"}
    assert neuro(datadir, "verify", root)[0] == 0
    code, out = neuro(datadir, "export", root, str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "manifest.json").is_file()
    assert neuro(datadir, "pin", root)[0] == 0 and json.loads(neuro(datadir, "show", root, "--json")[1])["pinned"]
    assert neuro(datadir, "rm", root)[0] == 0
    assert json.loads(neuro(datadir, "list", "--json")[1])["artifacts"] == []


def one_line_failure(code: int, out: str, reason: str) -> None:
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and reason in lines[0], out
    assert "Traceback" not in out


def test_failures_are_one_line_with_their_reason(tmp_path: Path) -> None:
    datadir = tmp_path / "node"
    one_line_failure(*neuro(datadir, "show", "xyz"), "bad-root")
    one_line_failure(*neuro(datadir, "show", "00" * 32), "unknown-artifact")
    one_line_failure(*neuro(datadir, "import", str(tmp_path / "nothing")), "file-missing")
    root = make_artifact(tmp_path / "a", "a", [100]).hex()
    item = tmp_path / "a" / "items" / "0000.bin"
    item.write_bytes(item.read_bytes()[::-1])
    one_line_failure(*neuro(datadir, "import", str(tmp_path / "a")), "file-hash")
    make_artifact(tmp_path / "b", "b", [100])
    assert neuro(datadir, "import", str(tmp_path / "b"))[0] == 0
    stored = next((datadir / "artifacts" / "blobs").glob("*/*"))
    os.chmod(stored, 0o600)
    stored.write_bytes(b"rot")
    broken = json.loads(neuro(datadir, "list", "--json")[1])["artifacts"][0]["root"]
    assert broken != root
    one_line_failure(*neuro(datadir, "verify", broken), "file-")


EXAMPLES = Path(__file__).resolve().parents[3] / "worker" / "examples"


def test_a_render_stored_then_exported_is_verified_as_a_buyer_would(tmp_path: Path) -> None:
    """`neuro task run --store`, exported from the store (no task.json beside it): `neuro task
    verify --root` checks what was delivered, and refuses a changed image or another root."""
    from cli.task import task_app

    datadir = tmp_path / "node"
    ran = runner.invoke(task_app, ["run", "render", str(EXAMPLES / "digits_render.json"), "--out",
                                   str(tmp_path / "r"), "--store", "--network", "devnet", "--datadir", str(datadir)])
    assert ran.exit_code == 0, ran.output
    root = json.loads((tmp_path / "r" / "manifest.json").read_text())["root"]
    assert f"stored as artifact {root}" in ran.output.replace("\n", "")
    assert neuro(datadir, "export", root, str(tmp_path / "bought"))[0] == 0
    assert not (tmp_path / "bought" / "task.json").exists()
    verify = ["verify", str(tmp_path / "bought"), "--samples", "4", "--beacon", "01", "--root", root]
    checked = runner.invoke(task_app, verify)
    assert checked.exit_code == 0 and "ok" in checked.output, checked.output
    wrong = runner.invoke(task_app, [*verify[:-1], "00" * 32])
    assert wrong.exit_code == 1 and "wrong-root" in wrong.output
    image = sorted((tmp_path / "bought").rglob("*.png"))[2]
    image.write_bytes(image.read_bytes()[:-1] + bytes([image.read_bytes()[-1] ^ 1]))
    tampered = runner.invoke(task_app, verify)
    assert tampered.exit_code == 1 and image.name in tampered.output, tampered.output
