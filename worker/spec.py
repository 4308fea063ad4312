"""Task specs: the declarative, hashable description of a job.

A spec is the only thing a buyer sends a worker (workers never run code from the network), and its
hash is what the chain commits to, so the same spec must give the same bytes on every machine:
specs hold integers, strings and tuples only (no floats), and `canonical_json` sorts keys and drops
whitespace. Every numeric field is capped, so a spec cannot ask for huge work or memory by accident.

Specs are strict: ``"count": "20"`` or ``"count": true`` is an error, not 20 or 1 (a buyer who
wrote a string meant something we cannot guess, and ``true`` would be hashed as ``true``). Only
the JSON list -> tuple step is allowed (JSON has no tuples); the items stay strict. Every error
names the field's full path from the top of the task file (``spec.background.colour``): nested
specs and tagged unions (`tagged`) are validated where they sit, never as detached documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Strict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from chain.hashing import hash256
from worker.errors import SpecError

MAX_SPEC_FILE_BYTES = 1 << 20  # a spec is a few KiB; a bigger file is a mistake or an attack
MAX_ERRORS_SHOWN = 3
MAX_SHOWN_INPUT = 40  # characters of a wrong value quoted back in an error

SpecT = TypeVar("SpecT", bound="TaskSpec")
# JSON has no tuples: a list is accepted as the container, the items stay strict
LIST_AS_TUPLE = Strict(False)
IntRange = Annotated[tuple[int, int], LIST_AS_TUPLE]
STRICT_SPEC = ConfigDict(extra="forbid", frozen=True, strict=True)


class TaskSpec(BaseModel):
    """Base of every task spec: unknown fields are errors, no value is coerced into another type
    (strict mode), and a parsed spec never changes."""

    model_config = STRICT_SPEC

    def canonical_json(self) -> bytes:
        return canonical_json(self)

    def spec_hash(self) -> bytes:
        return spec_hash(self)


def canonical_json(spec: BaseModel) -> bytes:
    """Sorted keys, no whitespace, ASCII only: the one byte form a spec hash is taken over."""
    data = spec.model_dump(mode="json")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def spec_hash(spec: BaseModel) -> bytes:
    """blake2b-256 of the canonical JSON: the content id a JobPost names."""
    return hash256(canonical_json(spec))


def between(low: int, high: int) -> AfterValidator:
    """Validator of a domain-randomization range ``[min, max]`` with both ends in [low, high].

    Used as ``Annotated[IntRange, between(0, 100)]``; written in JSON as a two-element list, and
    tuned between rounds by the active-learning optimizer.
    """

    def check(pair: IntRange) -> IntRange:
        if not low <= pair[0] <= high or not low <= pair[1] <= high:
            raise ValueError(f"ends must lie in [{low}, {high}], got [{pair[0]}, {pair[1]}]")
        if pair[0] > pair[1]:
            raise ValueError(f"min {pair[0]} is above max {pair[1]}")
        return pair

    return AfterValidator(check)


def _exact_int(value: Any) -> Any:
    # `Literal[1]` takes True and 1.0 even in strict mode (True == 1 == 1.0 in Python)
    if type(value) is not int:
        raise PydanticCustomError("int_type", "must be an integer")
    return value


EXACT_INT = BeforeValidator(_exact_int)
"""For integer `Literal` fields (``Annotated[Literal[1, 3], EXACT_INT]``): refuse booleans and
floats, which pydantic's literal check lets through."""


def pick_tagged(tag: str, models: Mapping[str, type[BaseModel]], value: Any) -> BaseModel:
    """``value`` validated as the model that its field ``tag`` names (``"name": "cnn"``).

    pydantic's own discriminated unions put the tag value into the error path
    (``model.cnn.width``), which names no field a person wrote. This picks the model first and
    validates in place: raised inside a validator, its ValidationError keeps the paths below the
    field, so errors read ``model.width``; a bad tag reads ``model.name: must be 'cnn' or
    'centernet'``.
    """
    if isinstance(value, BaseModel) and type(value) in models.values():
        return value
    if not isinstance(value, Mapping):
        raise PydanticCustomError("model_type", "must be an object")
    chosen = models.get(value[tag]) if isinstance(value.get(tag), str) else None
    if chosen is None:
        kind = "missing" if tag not in value else "literal_error"
        expected = " or ".join(repr(name) for name in models)
        detail = InitErrorDetails(type=kind, loc=(tag,), input=value.get(tag),
                                  ctx={"expected": expected})
        raise ValidationError.from_exception_data(tag, [detail])
    return chosen.model_validate(value)


def tagged(tag: str, models: Mapping[str, type[BaseModel]]) -> BeforeValidator:
    """`pick_tagged` as a field validator: ``Annotated[CnnSpec | CenterNetSpec, tagged(...)]``."""
    return BeforeValidator(lambda value: pick_tagged(tag, models, value))


def checked_as(validate: Callable[[Any], object]) -> AfterValidator:
    """Validator of a spec held as a plain object inside another (a task's ``train``, ``spec``).

    ``validate`` (``TrainSpec.model_validate``, or a function that imports the model when a spec
    is first parsed) runs in place, so its errors carry the full path from the top of the task
    file; the field keeps the object as written, for the task to load.
    """

    def check(value: dict[str, Any]) -> dict[str, Any]:
        validate(value)
        return value

    return AfterValidator(check)


def seed_sequence_from(spec_digest: bytes, seed: int, index: int) -> np.random.SeedSequence:
    """Seed of item ``index``: depends on nothing but the spec hash, the job seed and the index.

    SeedSequence's mixing is specified bit for bit by numpy, so every worker and validator derives
    the same stream for an item without rendering the items before it.
    """
    if seed < 0 or index < 0:
        raise SpecError(f"seed and index must be >= 0, got {seed} and {index}", reason="bad-seed")
    return np.random.SeedSequence(
        entropy=int.from_bytes(spec_digest, "big"), spawn_key=(seed, index)
    )


def load_spec(source: str | Path | Mapping[str, Any] | BaseModel, model: type[SpecT]) -> SpecT:
    """Parse a spec from a JSON file, a dict or an already-built model, or raise `SpecError`."""
    if isinstance(source, model):
        return source
    if isinstance(source, BaseModel):
        source = source.model_dump(mode="json")
    if isinstance(source, (str, Path)):
        source = read_spec_json(Path(source))
    if not isinstance(source, Mapping):
        raise SpecError(f"a spec is a JSON object, got {type(source).__name__}")
    try:
        return model.model_validate(dict(source))
    except ValidationError as error:
        raise SpecError(describe_errors(error)) from None


def read_spec_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_FILE_BYTES:
            raise SpecError(
                f"{path}: spec file is {size} bytes, the limit is {MAX_SPEC_FILE_BYTES}"
            )
        return json.loads(path.read_bytes())
    except OSError as error:
        raise SpecError(
            f"{path}: cannot read spec ({error.strerror})", reason="spec-unreadable"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SpecError(f"{path}: not valid JSON ({error})") from None


def describe_errors(error: ValidationError) -> str:
    """pydantic's report as a few lines a person can act on: ``scene.width: must be <= 2048``."""
    lines = [_describe_one(item) for item in error.errors()[:MAX_ERRORS_SHOWN]]
    extra = error.error_count() - len(lines)
    if extra > 0:
        lines.append(f"(and {extra} more)")
    return "; ".join(lines)


def _describe_one(item: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in item["loc"]) or "spec"
    kind = item["type"]
    ctx = item.get("ctx") or {}
    messages = {
        "extra_forbidden": "unknown field",
        "missing": "required field is missing",
        "less_than_equal": f"must be <= {ctx.get('le')}",
        "less_than": f"must be < {ctx.get('lt')}",
        "greater_than_equal": f"must be >= {ctx.get('ge')}",
        "greater_than": f"must be > {ctx.get('gt')}",
        "int_type": "must be an integer",
        "int_parsing": "must be an integer",
        "int_from_float": "must be an integer",
        "float_type": "must be a number",
        "string_type": "must be a string",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "literal_error": f"must be {ctx.get('expected')}",
        "too_short": f"needs at least {ctx.get('min_length')} items",
        "too_long": f"takes at most {ctx.get('max_length')} items",
        "tuple_type": "must be a list [min, max]",
        "list_type": "must be a list",
        "model_type": "must be an object",
        "dict_type": "must be an object",
    }
    text = messages.get(kind)
    if text is None:
        text = str(item["msg"]).removeprefix("Value error, ")
    shown = _shown(item.get("input"))
    if shown and kind.endswith(("_type", "_parsing", "_from_float", "literal_error")):
        text += f", got {shown}"  # "count: must be an integer, got true"
    return f"{where}: {text}"


def _shown(value: Any) -> str:
    """A scalar input as JSON (``true``, ``"20"``), cut short; "" for objects and lists."""
    if value is not None and not isinstance(value, (bool, int, float, str)):
        return ""
    text = json.dumps(value)
    return text if len(text) <= MAX_SHOWN_INPUT else text[:MAX_SHOWN_INPUT] + '..."'

