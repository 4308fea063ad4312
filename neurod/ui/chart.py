"""The clearing-price plot, drawn on the server as SVG: no chart library, no script.

One series per service: each cleared job is a point at (its post height, its median awarded unit
price) with a whisker from its lowest to its highest shard price, joined in height order. The
y axis starts at zero so that the eye reads ratios right. Colours are presentation attributes,
which the page's Content-Security-Policy allows (inline `style` it does not).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neurod.ui.html import Markup, join, tag, void

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 16, 32  # margins for the axis labels
PALETTE = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#2c7a7b")
Y_TICKS = 4


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    return out_low + (value - low) * (out_high - out_low) / ((high - low) or 1)


def price_chart(rows: Sequence[dict[str, Any]]) -> Markup:
    """The SVG plot of `market_prices`' job rows (any order); a note when none cleared."""
    points = [r for r in rows if r.get("median") is not None]
    if not points:
        return tag("p", "no clearing prices yet: a point appears when a job's shards are awarded",
                   class_="muted", id="prices-empty")
    heights = [int(r["posted"]) for r in points]
    x_low, x_high = min(heights), max(heights)
    if x_low == x_high:
        x_low, x_high = x_low - 1, x_high + 1
    y_high = max(float(r["high"]) for r in points) * 1.1 or 1.0

    def x(height: float) -> float:
        return round(_scale(height, x_low, x_high, LEFT, WIDTH - RIGHT), 1)

    def y(price: float) -> float:
        return round(_scale(price, 0, y_high, HEIGHT - BOTTOM, TOP), 1)

    services = sorted({str(r["service"]) for r in points})
    parts = [_axes(x_low, x_high, y_high, x, y)]
    for index, service in enumerate(services):
        color = PALETTE[index % len(PALETTE)]
        series = sorted((r for r in points if r["service"] == service), key=lambda r: int(r["posted"]))
        parts.append(_series(service, series, color, x, y))
        parts.append(tag("text", f"● {service}", x=LEFT + 8 + 130 * index, y=TOP + 4, fill=color,
                         class_="legend"))
    return tag("svg", *parts, xmlns="http://www.w3.org/2000/svg", viewBox=f"0 0 {WIDTH} {HEIGHT}",
               width=WIDTH, height=HEIGHT, role="img", id="price-chart",
               aria_label="clearing unit prices by post height, per service")


def _axes(x_low: int, x_high: int, y_high: float, x: Any, y: Any) -> Markup:
    base = HEIGHT - BOTTOM
    lines = [void("line", x1=LEFT, y1=base, x2=WIDTH - RIGHT, y2=base, stroke="#888"),
             void("line", x1=LEFT, y1=TOP, x2=LEFT, y2=base, stroke="#888")]
    for step in range(Y_TICKS + 1):
        price = y_high * step / Y_TICKS
        lines.append(tag("text", f"{price:,.0f}", x=LEFT - 6, y=y(price) + 4, text_anchor="end", class_="tick"))
    for height in sorted({x_low, x_high}):
        lines.append(tag("text", f"#{height}", x=x(height), y=base + 18, text_anchor="middle", class_="tick"))
    lines.append(tag("text", "block height of the post", x=(LEFT + WIDTH) / 2, y=HEIGHT - 2,
                     text_anchor="middle", class_="tick"))
    return join(lines)


def _series(service: str, rows: list[dict[str, Any]], color: str, x: Any, y: Any) -> Markup:
    parts = []
    if len(rows) > 1:
        path = " ".join(f"{x(int(r['posted']))},{y(float(r['median']))}" for r in rows)
        parts.append(void("polyline", points=path, fill="none", stroke=color, stroke_width=1.5))
    for r in rows:
        cx = x(int(r["posted"]))
        parts.append(void("line", x1=cx, y1=y(float(r["low"])), x2=cx, y2=y(float(r["high"])), stroke=color))
        label = (f"{service} job {str(r['job'])[:12]} at #{r['posted']}: median {r['median']} "
                 f"(low {r['low']}, high {r['high']}) per {r.get('quote_unit') or 'unit'}")
        parts.append(tag("circle", tag("title", label), cx=cx, cy=y(float(r["median"])), r=4, fill=color,
                         class_="price-point", data_service=service, data_job=r["job"], data_height=r["posted"],
                         data_price=r["median"]))
    return tag("g", *parts, class_="series", data_service=service)
