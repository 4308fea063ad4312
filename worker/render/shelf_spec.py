"""The retail-shelf generator spec: store layout, product catalog and randomization ranges.

Every ``(min, max)`` pair is a domain-randomization range: each image draws its own value from it,
and the active-learning loop tunes the ends between rounds. Units are pixels, percent, or Q8 gains
(256 = 1.0); there are no floats, so the spec hash is the same on every machine.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from worker.spec import EXACT_INT, LIST_AS_TUPLE, STRICT_SPEC, IntRange, TaskSpec, between

MAX_SIDE = 2048
MAX_COUNT = 1_000_000
MAX_SKUS = 1000
MAX_INSTANCES = 1024  # per image; instance ids also key the COCO annotation ids

Shape = Literal["box", "can", "bottle", "bag"]
BackgroundStyle = Literal["solid", "vertical", "stripes", "checker"]
Channel = Annotated[IntRange, between(0, 255)]


class Part(BaseModel):
    """A nested section of a spec: same strictness as the spec itself."""

    model_config = STRICT_SPEC


class ColorRange(Part):
    """An RGB colour drawn channel by channel from these ranges."""

    red: Channel = (0, 255)
    green: Channel = (0, 255)
    blue: Channel = (0, 255)


class CatalogSpec(Part):
    """Procedural SKUs: fixed per spec (drawn from the spec hash, not the job seed)."""

    skus: int = Field(
        default=20, ge=1, le=MAX_SKUS, description="number of products, one COCO category each"
    )
    shapes: Annotated[tuple[Shape, ...], LIST_AS_TUPLE] = Field(
        default=("box", "can", "bottle", "bag"), min_length=1, max_length=4
    )
    width_px: Annotated[IntRange, between(4, 512)] = Field(
        default=(16, 36), description="package width at scale 100"
    )
    height_px: Annotated[IntRange, between(4, 1024)] = Field(
        default=(28, 64), description="package height at scale 100"
    )
    body: ColorRange = ColorRange()
    label: ColorRange = ColorRange()
    band_pct: Annotated[IntRange, between(10, 90)] = Field(
        default=(25, 45), description="label band height, % of package"
    )
    glyph_rows: Annotated[IntRange, between(0, 4)] = Field(
        default=(1, 2), description="rows of 'text' glyphs in the band"
    )
    logo_pct: int = Field(default=70, ge=0, le=100, description="chance that a SKU carries a logo")


class ShelfLayoutSpec(Part):
    """Shelf boards: rows across the whole image, products standing on each board."""

    rows: Annotated[IntRange, between(1, 8)] = (2, 4)
    board_px: Annotated[IntRange, between(1, 64)] = (5, 10)
    board: ColorRange = ColorRange(red=(90, 200), green=(90, 200), blue=(90, 200))
    tag_pct: int = Field(
        default=30, ge=0, le=100, description="chance of a price tag under a facing"
    )


class PlacementSpec(Part):
    """How densely products face the aisle and how often one hides another."""

    facing_pct: Annotated[IntRange, between(0, 100)] = Field(
        default=(75, 100), description="chance a slot holds a product"
    )
    gap_px: Annotated[IntRange, between(0, 64)] = (0, 3)
    group: Annotated[IntRange, between(1, 16)] = Field(
        default=(1, 4), description="side-by-side facings of one SKU"
    )
    scale_pct: Annotated[IntRange, between(25, 400)] = Field(
        default=(80, 100), description="camera distance, per image"
    )
    occlusion_pct: Annotated[IntRange, between(0, 100)] = Field(
        default=(0, 20), description="chance of a product in front"
    )
    max_instances: int = Field(default=256, ge=1, le=MAX_INSTANCES)


class PhotometricSpec(Part):
    """Lighting, camera jitter, blur and noise: pixels only, the id map is never touched."""

    gain_q8: Annotated[IntRange, between(32, 1024)] = (200, 300)
    offset: Annotated[IntRange, between(-255, 255)] = (-20, 20)
    gradient_q8: Annotated[IntRange, between(-512, 512)] = Field(
        default=(-48, 48), description="gain change left to right"
    )
    jitter_px: Annotated[IntRange, between(0, 256)] = (0, 4)
    blur_pct: int = Field(default=30, ge=0, le=100)
    blur_radius: Annotated[IntRange, between(1, 8)] = (1, 1)
    noise_pct: int = Field(default=50, ge=0, le=100)
    noise_amplitude: Annotated[IntRange, between(1, 127)] = (2, 8)


class BackgroundSpec(Part):
    styles: Annotated[tuple[BackgroundStyle, ...], LIST_AS_TUPLE] = Field(
        default=("solid", "vertical", "stripes", "checker"), min_length=1, max_length=4
    )
    color: ColorRange = ColorRange()
    period_px: Annotated[IntRange, between(2, 512)] = (4, 32)


class ShelfSpec(TaskSpec):
    """A labeled retail-shelf dataset: COCO instances (one category per SKU) with exact masks."""

    kind: Literal["shelf"] = "shelf"
    renderer_version: Annotated[Literal[1], EXACT_INT] = 1
    width: int = Field(default=256, ge=32, le=MAX_SIDE)
    height: int = Field(default=256, ge=32, le=MAX_SIDE)
    count: int = Field(default=1000, ge=1, le=MAX_COUNT, description="images in the dataset")
    catalog: CatalogSpec = CatalogSpec()
    shelf: ShelfLayoutSpec = ShelfLayoutSpec()
    placement: PlacementSpec = PlacementSpec()
    photometric: PhotometricSpec = PhotometricSpec()
    background: BackgroundSpec = BackgroundSpec()
