"""A read-only web dashboard of one node, served at `/ui` on its loopback RPC port.

Modules: `app` (routes, login, sessions, security headers), `sessions` (tokens), `views` (the
sections, read through the node's own read-only RPC methods), `chart` (the price plot as SVG),
`pages` (the two HTML documents), `html` (escaping builders). The browser holds a session token
in an HttpOnly cookie, never the RPC cookie nor any key; static files are served from
`static/`, with no build step and nothing fetched from elsewhere. docs/rpc.md, "Dashboard".
"""
