"""Public addresses: every link a voter, an overlay or a printed card gets, built by url_for.

Links are absolute on BASE_URL, the address people reach (not the host a request came
in on), and are built from the app's routes by endpoint, so renaming a route's path
moves every link with it, and renaming an endpoint fails loudly instead of silently.
They work inside a request and outside one (the CLI prints links and QR sheets).
"""

from __future__ import annotations

from typing import Any

from flask import current_app


def path_for(endpoint: str, **values: Any) -> str:
    """The path of a route, with query arguments for values it does not take."""
    adapter = current_app.url_map.bind("", script_name="/")
    return str(adapter.build(endpoint, values))


def public_url(endpoint: str, **values: Any) -> str:
    """The absolute address of a route on BASE_URL."""
    return str(current_app.config["BASE_URL"]) + path_for(endpoint, **values)


def voter_url(token: str) -> str:
    """The link a voter opens: BASE_URL/v/<token>."""
    return public_url("public.voter_link", token=token)
