"""How a moment is written in documents and exports: ISO 8601, UTC spelled Z."""

from __future__ import annotations

from datetime import datetime


def iso(moment: datetime | None) -> str | None:
    """The moment as ISO 8601 with a Z for UTC, or None for no moment."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None
