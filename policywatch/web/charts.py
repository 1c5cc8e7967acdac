"""Small inline SVG charts (no JavaScript, no external assets): a document's timeline and the
dashboard's changes per source per day. Every label is escaped."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

from alerts.identity import local_time
from storage.vocabulary import EventKind

PALETTE = ("#0969da", "#1a7f37", "#bf8700", "#cf222e", "#8250df", "#1b7c83", "#bc4c00", "#57606a")
KIND_COLOURS = {kind.value: kind.colour for kind in EventKind}


def colour_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _when(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _attr(value: object) -> str:
    return str(escape(str(value)))


def timeline_svg(
    versions: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    *,
    link_for_event: Callable[[Mapping[str, Any]], str | None],
    link_for_version: Callable[[Mapping[str, Any]], str],
    width: int = 760,
) -> Markup:
    """Versions as bars over the time each was current, change events as dots below them."""
    times = [t for v in versions for t in (_when(v["first_seen_at"]), _when(v["last_seen_at"])) if t]
    times += [t for e in events if (t := _when(e["detected_at"]))]
    if not times:
        return Markup("")
    start, end = min(times), max(times)
    if end - start < timedelta(minutes=1):
        start, end = start - timedelta(hours=1), end + timedelta(hours=1)
    left, right, height = 16, 16, 118
    span_s = (end - start).total_seconds()

    def x(t: datetime) -> float:
        return left + (width - left - right) * (t - start).total_seconds() / span_s

    parts = [
        f'<svg class="pw-chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>Versions and changes over time</title>',
        f'<line x1="{left}" y1="92" x2="{width - right}" y2="92" stroke="#d0d7de"/>',
    ]
    for n, version in enumerate(versions, start=1):
        v0 = _when(version["first_seen_at"]) or start
        v1 = _when(version["last_seen_at"]) or v0
        x0, x1 = x(v0), max(x(v1), x(v0) + 4)
        label = (
            f"v{n} · version {version['id']} · {local_time(version['first_seen_at'], label=False)}"
            f" – {local_time(version['last_seen_at'])}"
        )
        parts.append(
            f'<a href="{_attr(link_for_version(version))}"><rect x="{x0:.1f}" y="22" '
            f'width="{x1 - x0:.1f}" height="26" rx="3" fill="{colour_for(n - 1)}" fill-opacity="0.75">'
            f"<title>{escape(label)}</title></rect></a>"
        )
        parts.append(f'<text x="{x0 + 3:.1f}" y="16" font-size="11" fill="#57606a">{escape(f"v{n}")}</text>')
    for event in events:
        t = _when(event["detected_at"])
        if t is None:
            continue
        colour = KIND_COLOURS.get(str(event["kind"]), "#57606a")
        tip = f"{event['kind']} · {local_time(event['detected_at'])} · {event.get('summary') or ''}"
        dot = (
            f'<circle cx="{x(t):.1f}" cy="72" r="6" fill="{colour}" stroke="#fff" stroke-width="1.5">'
            f"<title>{escape(tip)}</title></circle>"
        )
        link = link_for_event(event)
        parts.append(f'<a href="{_attr(link)}">{dot}</a>' if link else dot)
    for t, anchor in ((start, "start"), (end, "end")):
        parts.append(
            f'<text x="{x(t):.1f}" y="110" font-size="11" fill="#57606a" text-anchor="{anchor}">'
            f"{escape(local_time(t))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bars_svg(
    days: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    width: int = 760,
    height: int = 220,
) -> Markup:
    """One bar per day, stacked by source (series in legend order). `days` are YYYY-MM-DD."""
    if not days:
        return Markup("")
    left, right, top, bottom = 36, 8, 10, 28
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    peak = max(max(totals), 1)
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / len(days)
    bar_w = max(1.0, slot * 0.8)
    parts = [
        f'<svg class="pw-chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>Changes per source per day</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#d0d7de"/>',
        f'<text x="{left - 4}" y="{top + 10}" font-size="11" fill="#57606a" text-anchor="end">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" font-size="11" fill="#57606a" text-anchor="end">0</text>',
    ]
    for i, day in enumerate(days):
        y: float = top + plot_h
        for n, (source, values) in enumerate(series.items()):
            count = values[i]
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            parts.append(
                f'<rect x="{left + i * slot + (slot - bar_w) / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour_for(n)}"><title>{escape(f"{source} {day}: {count}")}'
                "</title></rect>"
            )
    step = max(1, len(days) // 8)
    for i in range(0, len(days), step):
        parts.append(
            f'<text x="{left + i * slot + slot / 2:.1f}" y="{height - 8}" font-size="10" fill="#57606a" '
            f'text-anchor="middle">{escape(days[i][5:])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def day_range(first: datetime, last: datetime) -> list[str]:
    """Every UTC day from `first` to `last` inclusive, as YYYY-MM-DD."""
    day, out = first.date(), []
    while day <= last.date():
        out.append(day.isoformat())
        day += timedelta(days=1)
    return out
