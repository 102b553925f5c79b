"""The community-favorite voting service: `create_app` builds it (see voting.app)."""

from __future__ import annotations

from voting.app import create_app

__all__ = ["create_app"]
