"""HTML built so that nothing reaches the page unescaped.

Every string the dashboard shows may come from a peer (peer ids, addresses, bid notices) or a
client (job messages), so the rule is structural rather than a habit: `esc` turns any value into
`Markup` (escaped text), and the builders here (`tag`, `table`) escape every child and attribute
that is not already `Markup`. Templates are these calls, never f-strings around raw values.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any


class Markup(str):
    """Text that is safe HTML: escaped, or assembled only from escaped parts."""

    __slots__ = ()


def esc(value: Any) -> Markup:
    """``value`` as HTML text: `Markup` passes through, anything else is str()-ed and escaped
    (quotes included, so it is safe inside an attribute too); None shows as an en dash."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("–" if value is None else str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    return Markup(esc(sep).join(esc(part) for part in parts))


def tag(name: str, /, *children: Any, **attrs: Any) -> Markup:
    """``<name attrs>children</name>``; ``class_`` stands for ``class``, ``data_x`` for
    ``data-x``; an attribute whose value is None is left out, True writes it bare."""
    rendered = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        attr = key.rstrip("_").replace("_", "-")
        rendered.append(f" {attr}" if value is True else f' {attr}="{esc(value)}"')
    return Markup(f"<{name}{''.join(rendered)}>{join(children)}</{name}>")


def void(name: str, /, **attrs: Any) -> Markup:
    """An element with no content (``<input>``); written as ``<name/>`` so it is valid in SVG too."""
    body = tag(name, **attrs)
    return Markup(body[: -len(f"></{name}>")] + "/>")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "none yet", **attrs: Any) -> Markup:
    """A table, or a muted ``empty`` line when there are no rows."""
    body = [tag("tr", *(tag("td", cell) for cell in row)) for row in rows]
    if not body:
        return tag("p", empty, class_="muted")
    head = tag("thead", tag("tr", *(tag("th", h) for h in headers)))
    return tag("table", head, tag("tbody", *body), **attrs)


def short(hex_id: Any, size: int = 12) -> Markup:
    """A long id cut to ``size`` characters, the full one in the tooltip."""
    text = "" if hex_id is None else str(hex_id)
    if len(text) <= size:
        return esc(text or None)
    return tag("span", text[:size] + "…", title=text, class_="id")
