"""The poll page's chart of ballots per minute, laid out as SVG bars (pure: no Flask)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

CHART_WIDTH, CHART_HEIGHT = 640, 180
CHART_MIN_MINUTES, CHART_MAX_MINUTES = 15, 60


@dataclass
class Bar:
    """One minute's bar, in SVG user units."""

    x: float
    y: float
    width: float
    height: float
    votes: int
    label: str


@dataclass
class Chart:
    """The bars, their scale and a sentence describing them for screen readers."""

    bars: list[Bar] = field(default_factory=list)
    peak: int = 0
    top: int = 1
    total: int = 0
    minutes: int = 0
    first_label: str = ""
    last_label: str = ""
    description: str = ""
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    plot_left: int = 36
    plot_bottom: int = CHART_HEIGHT - 24


def ballot_chart(
    series: Iterable[tuple[datetime, int]],
    *,
    start: datetime | None,
    end: datetime,
    zone: ZoneInfo,
) -> Chart:
    """Bars of ballots per minute from start to end (15 to 60 minutes wide), zeros filled in."""
    end = end.replace(second=0, microsecond=0)
    earliest = end - timedelta(minutes=CHART_MAX_MINUTES - 1)
    latest_start = end - timedelta(minutes=CHART_MIN_MINUTES - 1)
    first = start.replace(second=0, microsecond=0) if start else latest_start
    first = min(max(first, earliest), latest_start)
    counts = {minute.astimezone(UTC): n for minute, n in series}
    minutes = int((end - first).total_seconds() // 60) + 1
    chart = Chart(minutes=minutes)
    slots = [first + timedelta(minutes=i) for i in range(minutes)]
    values = [counts.get(m, 0) for m in slots]
    chart.peak = max(values, default=0)
    chart.top = max(chart.peak, 1)
    chart.total = sum(values)
    plot_width = chart.width - chart.plot_left - 8
    plot_height = chart.plot_bottom - 12
    step = plot_width / minutes
    for i, (minute, votes) in enumerate(zip(slots, values, strict=True)):
        height = plot_height * votes / chart.top
        chart.bars.append(
            Bar(
                x=round(chart.plot_left + i * step + step * 0.1, 2),
                y=round(chart.plot_bottom - height, 2),
                width=round(step * 0.8, 2),
                height=round(height, 2),
                votes=votes,
                label=f"{minute.astimezone(zone):%H:%M}",
            )
        )
    chart.first_label = chart.bars[0].label if chart.bars else ""
    chart.last_label = chart.bars[-1].label if chart.bars else ""
    busiest = max(range(len(values)), key=lambda i: values[i]) if values else 0
    chart.description = (
        f"{chart.total} ballots in the {minutes} minutes from {chart.first_label} to "
        f"{chart.last_label}"
        + (
            f"; the busiest minute was {chart.bars[busiest].label} with {chart.peak}."
            if chart.peak
            else "."
        )
    )
    return chart
