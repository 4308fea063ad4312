"""The two documents of the dashboard: the login form and the page around the live sections.

Both load only `/ui/static/ui.css` and `/ui/static/ui.js` from the node itself: the page works
offline and under a Content-Security-Policy that forbids inline script and style.
"""

from __future__ import annotations

from neurod.ui.html import Markup, join, tag, void

TITLE = "neurod dashboard"


def _document(title: str, body: Markup, script: bool) -> bytes:
    head = join([
        Markup('<meta charset="utf-8">'), tag("title", title),
        Markup('<meta name="viewport" content="width=device-width, initial-scale=1">'),
        Markup('<link rel="stylesheet" href="/ui/static/ui.css">'),
        Markup('<script src="/ui/static/ui.js" defer></script>') if script else "",
    ])
    return f'<!doctype html>\n<html lang="en"><head>{head}</head><body>{body}</body></html>\n'.encode()


def dashboard_page(sections: Markup, poll_ms: int) -> bytes:
    """The dashboard: a header, then the sections, which ui.js refreshes from `/ui/live`."""
    logout = tag("form", tag("button", "log out", type="submit"), method="post", action="/ui/logout")
    header = tag("header", tag("h1", TITLE), tag("span", "live updates every ", f"{poll_ms / 1000:g} s",
                                                  id="updated"), logout)
    main = tag("main", sections, id="live", data_src="/ui/live", data_interval=poll_ms)
    return _document(TITLE, join([header, main]), script=True)


def login_page(message: str = "") -> bytes:
    """The cookie form. The cookie is the `.cookie` file in the node's data dir (`user:secret`
    or the secret alone); `neuro ui` prints a link that logs in without pasting it."""
    form = tag(
        "form",
        tag("label", "RPC cookie (the content of <datadir>/.cookie)", for_="cookie"),
        void("input", type="password", name="cookie", id="cookie", autocomplete="off", required=True, autofocus=True),
        tag("button", "log in", type="submit", id="login"),
        method="post", action="/ui/login",
    )
    hint = tag("p", "or run ", tag("code", "neuro ui"), " for a one-time login link", class_="muted")
    error = tag("p", message, class_="error", id="login-error") if message else ""
    return _document(f"log in · {TITLE}", tag("main", tag("h1", TITLE), error, form, hint, class_="login"),
                     script=False)
