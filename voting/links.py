"""Public addresses: every link a voter, an overlay or a printed card gets, built by url_for.

Links are absolute on BASE_URL, the address people reach (not the host a request came
in on), and are built from the app's routes by endpoint, so renaming a route's path
moves every link with it, and renaming an endpoint fails loudly instead of silently.
They work inside a request and outside one (the CLI prints links and QR sheets).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from voting.domain.errors import InvalidRequest


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


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def check_printable_base() -> None:
    """Refuse to mint or print links on a base URL nobody else can reach.

    Cards and mailed links outlive a wrong setting: the default http://127.0.0.1:5000 is
    neither gunicorn's port nor a public host. The demo, VOTING_ALLOW_LOCAL_BASE_URL=true (a
    rehearsal on one laptop) and the CLI's --base-url are the ways past it.
    """
    config = current_app.config
    base = str(config["BASE_URL"])
    if config.get("DEMO") or config.get("ALLOW_LOCAL_BASE_URL"):
        return
    host = urlsplit(base).hostname or ""
    if not host or _is_local(host):
        raise InvalidRequest(
            f"Voter links would point at {base}, which only this machine can reach. "
            "Set VOTING_BASE_URL to the public address attendees open (for example "
            "https://vote.example.org), or pass --base-url; for a rehearsal on this machine "
            "only, set VOTING_ALLOW_LOCAL_BASE_URL=true."
        )
