"""Rate-limit keys. None may ever be empty: flask-limiter skips a limit whose key is empty."""

from __future__ import annotations

from voting.extensions import client_address


def address_key() -> str:
    """The client address as ProxyFix settled it (X-Forwarded-For only with VOTING_PROXY_HOPS)."""
    return client_address()
