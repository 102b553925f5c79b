"""Time zones for the console: the organizer's zone, formatting times, reading form inputs."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import current_app, session


def zone(name: str | None) -> ZoneInfo | None:
    """The zone of that name, or None when the server does not know it."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def tz_name() -> str:
    """The organizer's chosen zone (remembered from the poll form), else UTC."""
    name = session.get("tz")
    return name if isinstance(name, str) and zone(name) else "UTC"


def local_zone() -> ZoneInfo:
    """The organizer's zone, to show times in."""
    return zone(tz_name()) or ZoneInfo("UTC")


def fmt_local(moment: datetime | None, seconds: bool = False) -> str:
    """A moment in the organizer's zone, with the zone's abbreviation."""
    if moment is None:
        return ""
    local = moment.astimezone(local_zone())
    clock = "%H:%M:%S" if seconds else "%H:%M"
    return f"{local.strftime('%a %d %b %Y, ' + clock)} {local.tzname()}"


def fmt_utc(moment: datetime | None, seconds: bool = False) -> str:
    """A moment in UTC, spelled out."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "")) + " UTC"


def iso(moment: datetime | None) -> str:
    """A moment as ISO 8601 in UTC, for <time datetime>."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def local_input(moment: datetime | None, zone_name: str) -> str:
    """A datetime-local input value in the given zone."""
    if moment is None:
        return ""
    return moment.astimezone(zone(zone_name) or ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M")


def parse_local(value: str | None, in_zone: ZoneInfo) -> datetime | None:
    """A datetime-local input value read in the zone, as UTC; ValueError if it is not one."""
    value = (value or "").strip()
    if not value:
        return None
    naive = datetime.fromisoformat(value)
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=in_zone).astimezone(UTC)


def all_zones() -> list[str]:
    """Every zone the poll form offers, sorted (computed once per app)."""
    zones: list[str] | None = current_app.extensions.get("voting.admin_zones")
    if zones is None:
        zones = sorted(z for z in available_timezones() if "/" in z or z == "UTC")
        current_app.extensions["voting.admin_zones"] = zones
    return zones
