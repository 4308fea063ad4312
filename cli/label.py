"""Label Data from the command line: a label job's inputs published, and a person's review.

`neuro job submit label SPEC.json | --images DIR --model WEIGHTS` (`label_job_doc`): the images
and the model are packed as artifacts (`worker.label_job.pack_images`, `pack_weights`) into the
data dir's artifact store, pinned, where the client's daemon serves them to the workers it buys
from; the job names them by root. SPEC.json may be a local label task (``weights`` a file,
``images`` a folder: `worker/examples/label.json`), whose inputs are packed the same way, or a
job spec already naming roots, posted as it is.

`neuro label review DIR` (`review`): a person looks at sampled images of a label output (a job's
shard from `neuro job fetch`, or any folder holding a ``labels.json`` of `worker.label_job`) in
the terminal, accepts each label or fixes it; each reviewed record gets ``"review": {"by":
"person", "verdict": "accepted"|"fixed", "seconds": S}``, so the time a person spent is recorded
with the label it vouches for. A sealed artifact is re-sealed (its root changes: the reviewed
labels are a new artifact).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.config import DatadirOpt, NetworkOpt, Where
from cli.output import CliError, guarded, note

if TYPE_CHECKING:
    from neurod.artifact_store import ArtifactStore

label_app = typer.Typer(help="Label Data: review labels by hand.", no_args_is_help=True)
HEX64 = 64
DEFAULT_REVIEW = 10
PREVIEW_COLUMNS = 32  # terminal cells across an image preview (two pixels per cell, stacked)


def _is_root(text: str) -> bool:
    value = text.strip().lower().removeprefix("0x")
    return len(value) == HEX64 and all(c in "0123456789abcdef" for c in value) and not Path(text).exists()


def _put(store: ArtifactStore, folder: Path) -> Any:
    from cli.artifact import as_cli_errors

    return as_cli_errors(lambda: store.put(folder, pin=True))  # type: ignore[no-untyped-call]


def _images(store: ArtifactStore, source: str, scratch: Path) -> tuple[str, int]:
    """(root, image count) of the images: a root already stored, an images artifact folder, or a
    plain folder of images (packed here)."""
    from worker.errors import WorkerError
    from worker.label_job import IMAGES_KIND, pack_images

    if _is_root(source):
        root = bytes.fromhex(source.strip().lower().removeprefix("0x"))
        manifest = store.manifest(root)
        if manifest.kind != IMAGES_KIND:
            raise CliError(f"artifact {source[:16]} is a {manifest.kind!r} artifact, not images", "bad-images")
        return root.hex(), len(manifest.items)
    folder = Path(source).expanduser()
    if not (folder / "manifest.json").is_file():
        try:
            pack_images(folder, scratch / "images")
        except WorkerError as exc:
            raise CliError(str(exc), exc.reason) from None
        folder = scratch / "images"
    stored = _put(store, folder)
    if stored.kind != IMAGES_KIND:
        raise CliError(f"{source} is a {stored.kind!r} artifact, not images", "bad-images")
    return stored.root.hex(), stored.items


def _model(store: ArtifactStore, source: str, scratch: Path) -> tuple[str, dict[str, Any]]:
    """(root, zoo spec) of the model: a root already stored (a train job's output), a model
    artifact folder, or a weights .safetensors file (packed here)."""
    from worker.errors import WorkerError
    from worker.label_job import WEIGHTS_FILE, model_spec_of, pack_weights

    try:
        if _is_root(source):
            root = bytes.fromhex(source.strip().lower().removeprefix("0x"))
            store.export(root, scratch / "model")
            folder = scratch / "model"
        elif Path(source).expanduser().is_file():
            pack_weights(Path(source).expanduser(), scratch / "model")
            folder = scratch / "model"
        else:
            folder = Path(source).expanduser()
        if not (folder / WEIGHTS_FILE).is_file():
            raise CliError(f"{source}: no {WEIGHTS_FILE} (give weights, a model artifact or a train job's root)",
                           "bad-model")
        spec = model_spec_of(folder / WEIGHTS_FILE)
        return _put(store, folder).root.hex(), spec
    except WorkerError as exc:
        raise CliError(f"model {source}: {exc}", exc.reason) from None


def label_job_doc(spec: str | None, images: str | None, model: str | None, where: Where) -> dict[str, Any]:
    """The label job spec to post: SPEC.json as it is when it names roots, else its (or the
    options') images and weights published to the data dir's store and named by root."""
    from cli.artifact import open_store
    from worker.errors import WorkerError
    from worker.label_job import is_label_job
    from worker.runner import load_spec_file

    doc: dict[str, Any] = {}
    if spec is not None:
        try:
            doc = load_spec_file(Path(spec))  # a local task's paths resolved against its folder
        except WorkerError as exc:
            raise CliError(str(exc), "bad-spec-file") from None
        if doc.get("task") != "label":
            raise CliError(f"{spec}: not a label spec (\"task\": \"label\")", "bad-spec-file")
        if is_label_job(doc) and images is None and model is None:
            return doc
    images = images or (doc.get("images") if isinstance(doc.get("images"), str) else None)
    model = model or doc.get("weights") or doc.get("weights_root")
    if not images or not isinstance(model, str):
        raise CliError("a label job needs its images and its model: --images DIR --model WEIGHTS|DIR|ROOT, or "
                       "SPEC.json naming them", "missing-inputs")
    store = open_store(where.network, where.datadir)
    with tempfile.TemporaryDirectory(prefix="neuro-label-") as scratch:
        images_root, count = _images(store, images, Path(scratch))
        weights_root, model_spec = _model(store, model, Path(scratch))
    note(f"published {count} images ({images_root[:16]}) and the model ({weights_root[:16]}) to {store.path}")
    return {"task": "label", "images": count, "model": model_spec, "images_root": images_root,
            "weights_root": weights_root, "min_score_pct": int(doc.get("min_score_pct", 30))}


# ---- review -----------------------------------------------------------------------------------------


def preview(path: Path, boxes: list[list[float]] | None = None, columns: int = PREVIEW_COLUMNS) -> Any:
    """An image as terminal cells: each cell an upper-half block coloured by two stacked pixels,
    boxes outlined in yellow."""
    from PIL import Image
    from rich.text import Text

    with Image.open(path) as im:
        rgb = im.convert("RGB")
        width, height = rgb.size
        rows = max(2, round(columns * height / width / 2) * 2)
        small = rgb.resize((columns, rows))
    sx, sy = columns / width, rows / height
    outline: set[tuple[int, int]] = set()
    for x, y, w, h in boxes or []:
        x0, y0 = int(x * sx), int(y * sy)
        x1, y1 = min(columns - 1, int((x + w) * sx)), min(rows - 1, int((y + h) * sy))
        outline |= {(c, y0) for c in range(x0, x1 + 1)} | {(c, y1) for c in range(x0, x1 + 1)}
        outline |= {(x0, r) for r in range(y0, y1 + 1)} | {(x1, r) for r in range(y0, y1 + 1)}
    text = Text()
    pixels = list(small.getdata())  # (r, g, b) per pixel, row by row
    for r in range(0, rows, 2):
        for c in range(columns):
            top, bottom = pixels[r * columns + c], pixels[(r + 1) * columns + c]
            if (c, r) in outline:
                top = (255, 220, 0)
            if (c, r + 1) in outline:
                bottom = (255, 220, 0)
            text.append("▀", style=f"rgb({top[0]},{top[1]},{top[2]}) on rgb({bottom[0]},{bottom[1]},{bottom[2]})")
        text.append("\n")
    return text


def _describe(task: str, record: dict[str, Any]) -> str:
    if task == "classification":
        return f"class {record['label']} (p {record['probability']:.2f})"
    boxes = record["boxes"]
    return f"{len(boxes)} boxes: " + ", ".join(
        f"#{n} class {b['category_id'] - 1} at {[round(v) for v in b['bbox']]} (score {b['score']:.2f})"
        for n, b in enumerate(boxes)) if boxes else "no boxes"


def apply_fix(task: str, record: dict[str, Any], answer: str, classes: int) -> dict[str, Any] | None:
    """A fixed record from the reviewer's answer, or None when the answer is not a fix.
    Classifier: the right class (a number). Detector: ``-N`` drops box N, ``cN=K`` relabels it."""
    answer = answer.strip()
    if task == "classification":
        if answer.isdigit() and int(answer) < classes:
            return {**record, "label": int(answer), "probability": record["probabilities"][int(answer)]}
        return None
    boxes = [dict(b) for b in record["boxes"]]
    for part in answer.split():
        if part.startswith("-") and part[1:].isdigit() and int(part[1:]) < len(boxes):
            boxes[int(part[1:])] = {}
        elif part.startswith("c") and "=" in part:
            index, _, cls = part[1:].partition("=")
            if not (index.isdigit() and cls.isdigit() and int(index) < len(boxes) and int(cls) < classes):
                return None
            boxes[int(index)]["category_id"] = int(cls) + 1
        else:
            return None
    return {**record, "boxes": [b for b in boxes if b]}


def reviewed(record: dict[str, Any], verdict: str, seconds: float) -> dict[str, Any]:
    """``record`` marked as reviewed by a person, with the seconds the review took."""
    return {**record, "review": {"by": "person", "verdict": verdict, "seconds": round(seconds, 1)}}


@label_app.command("review")
@guarded
def review(
    folder: Annotated[Path, typer.Argument(help="a label output: a folder with labels.json (and manifest.json)",
                                           metavar="DIR")],
    images: Annotated[Path | None, typer.Option(
        "--images", help="the images folder (default: DIR/../images, or the images artifact in the store)")] = None,
    count: Annotated[int, typer.Option("--count", min=1, help="items sampled for review")] = DEFAULT_REVIEW,
    seed: Annotated[int | None, typer.Option("--seed", help="sample seed (default: random)")] = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
) -> None:
    """Review sampled labels by hand: accept (a), fix (a class, or -N / cN=K for boxes), skip (s) or
    quit (q). Each reviewed item records "reviewed by a person" and the seconds it took."""
    from rich.console import Console
    from rich.prompt import Prompt

    from worker.label_job import LABELS_FILE, records_of, task_of

    path = folder / LABELS_FILE
    try:
        document = json.loads(path.read_text())
        task, records = task_of(document), records_of(document)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CliError(f"{path}: not a label output ({exc})", "bad-labels") from None
    classes = _classes(folder, document)
    source = images or _images_folder(folder, network, datadir)
    console = Console()
    order = random.Random(seed).sample(range(len(records)), min(count, len(records)))
    done = 0
    for position in order:
        record = records[position]
        name = record["file_name"] if task == "classification" else Path(record["image"]["file_name"]).name
        boxes = None if task == "classification" else [b["bbox"] for b in record["boxes"]]
        console.print(preview(source / name, boxes) if (source / name).is_file() else f"({source / name} not found)")
        console.print(f"[bold]{name}[/bold]: {_describe(task, record)}")
        started = time.monotonic()
        while True:
            answer = Prompt.ask("accept (a), fix, skip (s), quit (q)", console=console, default="a")
            if answer in ("a", "s", "q"):
                break
            fixed = apply_fix(task, record, answer, classes)
            if fixed is not None:
                record, answer = fixed, "fixed"
                break
            console.print("[yellow]a class number (classifier); -N to drop box N, cN=K to relabel it (detector)")
        if answer == "q":
            break
        if answer != "s":
            records[position] = reviewed(record, "accepted" if answer == "a" else "fixed", time.monotonic() - started)
            done += 1
    _save(folder, task, records, classes, document)
    note(f"{done} items reviewed by a person, recorded in {path}")


def _classes(folder: Path, document: dict[str, Any]) -> int:
    if "predictions" in document:
        return len(document["predictions"][0]["probabilities"]) if document["predictions"] else 0
    return len(document.get("categories", []))


def _images_folder(folder: Path, network: str, datadir: Path | None) -> Path:
    """The images a label output was made from: beside it, or the images artifact it names,
    exported from the data dir's store."""
    from worker.artifact import read_manifest

    if (folder.parent / "images").is_dir():
        return folder.parent / "images"
    try:
        root = str(read_manifest(folder).meta["images_root"])
    except Exception:  # noqa: BLE001 - no manifest or no root: the user names the folder
        raise CliError(f"cannot tell where the images of {folder} are: pass --images", "no-images") from None
    from cli.artifact import open_store

    target = Path(tempfile.mkdtemp(prefix="neuro-review-"))
    open_store(network, datadir).export(bytes.fromhex(root), target / "a")
    return target / "a" / "images"


def _save(folder: Path, task: str, records: list[dict[str, Any]], classes: int, document: dict[str, Any]) -> None:
    """Write the reviewed labels back; a sealed artifact is sealed again over them."""
    from worker.artifact import MANIFEST_FILE, read_manifest
    from worker.label_job import LABELS_FILE, labels_document, write_labels

    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        (folder / LABELS_FILE).write_text(json.dumps({**document, **labels_document(task, records, classes)}))
        return
    meta = {k: v for k, v in read_manifest(folder).meta.items() if k not in ("task", "classes")}
    manifest_path.unlink()
    sealed = write_labels(folder, task, records, classes, meta)
    note(f"re-sealed: new root {sealed.root.hex()}")
