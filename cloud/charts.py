"""Climate history as inline SVG, drawn on the server (no script, no chart library)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

from cloud.i18n import parse_time

WIDTH, HEIGHT, PAD = 640, 180, 32


def line_chart(
    rows: list[dict[str, Any]],
    key: str,
    now: datetime,
    days: int,
    label: str,
    ends: tuple[str, str] = ("", ""),
) -> Markup:
    """A line of ``key`` over the last ``days``, with its range written on the axis."""
    start = now - timedelta(days=days)
    points: list[tuple[float, float]] = []
    for row in rows:
        value, moment = row.get(key), parse_time(str(row.get("time")))
        if isinstance(value, int | float) and moment is not None and moment >= start:
            points.append(((moment - start).total_seconds(), float(value)))
    title = escape(label)
    if not points:
        return Markup(  # noqa: S704 (every value in it is escaped or a number)
            f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}">'
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">—</text></svg>'
        )
    span = days * 86400.0
    lo = min(v for _t, v in points)
    hi = max(v for _t, v in points)
    if hi - lo < 1:
        lo, hi = lo - 0.5, hi + 0.5

    def xy(t: float, v: float) -> str:
        x = PAD + (WIDTH - 2 * PAD) * t / span
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v - lo) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(t, v) for t, v in points)
    desc = escape(f"{label}: {lo:.1f} – {hi:.1f}")
    axis = f'x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"'
    return Markup(  # noqa: S704 (every value in it is escaped or a number)
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{desc}">'
        f'<line class="axis" {axis}/>'
        f'<text x="4" y="{PAD - 8}">{hi:.1f}</text>'
        f'<text x="4" y="{HEIGHT - PAD + 4}">{lo:.1f}</text>'
        f'<text x="{PAD}" y="{HEIGHT - 8}">{escape(ends[0])}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end">{escape(ends[1])}</text>'
        f'<polyline class="series {escape(key)}" points="{line}"/></svg>'
    )
