"""Server-rendered SVG charts for the admin: drawn in Python, so they need no script and nothing
from the internet (a few lines of results/static/results/charts.js only toggle series).

``latency_chart`` is SmokePing's picture of report rows: per agent a shaded band from the fastest
sample (min) to the p95 of each bucket, the median (p50) as a line with one ``<circle
class="point">`` per bucket that has latency samples, a status strip under the plot (a rect per
bucket: all checks passed, some failed or packets lost, none passed) and a red shade over the
buckets where nothing passed. Each agent's marks are one ``<g class="series" data-series=...>``.
``line_chart`` draws plain lines (an agent's CPU and memory) the same way. Every value in the
markup goes through ``format_html``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

# Distinct from the status colours (green, amber, red), readable on light and dark backgrounds.
PALETTE = ["#2f6fba", "#8e44ad", "#16877f", "#b5651d", "#c0397a", "#6b7d1f", "#5b6b8c", "#d4a017"]
TICK_STEPS = [300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 2 * 86400, 5 * 86400, 7 * 86400]
MAX_TIME_TICKS = 8
STRIP_HEIGHT, STRIP_GAP = 6, 2
LABEL_SPACE = 22  # under the plot (and the strips): the time labels


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _join(pieces) -> SafeString:
    return format_html_join("", "{}", ((piece,) for piece in pieces))


def number(value: float | None, unit: str = "") -> str:
    """``0.42``, ``12.3``, ``184``: as many decimals as a glance needs; ``-`` for nothing."""
    if value is None:
        return "-"
    text = f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"
    return f"{text} {unit}".rstrip()


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


@dataclass(frozen=True)
class Frame:
    """Where time and value land in the viewBox: time from ``start`` over ``span`` seconds, value
    from 0 to ``top_value`` (higher values are drawn at the top edge)."""

    start: float
    span: float
    top_value: float
    width: int = 900
    plot_height: int = 200
    left: int = 52
    right: int = 14
    top: int = 16

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def bottom(self) -> float:
        return self.top + self.plot_height

    def x(self, epoch: float) -> float:
        return self.left + (epoch - self.start) / self.span * self.plot_width

    def y(self, value: float) -> float:
        return self.bottom - min(max(value, 0.0), self.top_value) / self.top_value * self.plot_height


def value_scale(highest: float | None, ticks: int = 4) -> tuple[float, float]:
    """(top, step) of a value axis from 0 that holds ``highest`` in about ``ticks`` round steps."""
    highest = highest if highest and highest > 0 else 1.0
    raw = highest / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    return math.ceil(highest / step - 1e-9) * step, step


def time_ticks(start: float, span: float) -> list[tuple[float, str]]:
    """Round moments (UTC) inside the window, at most MAX_TIME_TICKS of them, with their labels."""
    step = next((s for s in TICK_STEPS if span / s <= MAX_TIME_TICKS), TICK_STEPS[-1])
    first = math.ceil(start / step) * step
    ticks = []
    for epoch in range(int(first), int(start + span) + 1, step):
        moment = datetime.fromtimestamp(epoch, UTC)
        daily = step >= 86400 or (moment.hour == 0 and moment.minute == 0)
        ticks.append((float(epoch), f"{moment:%d %b}" if daily else f"{moment:%H:%M}"))
    return ticks


def tick_label(value: float, step: float) -> str:
    """``0``, ``2.5``, ``50``: as many decimals as the axis' step has."""
    text = f"{step:.6g}"
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 0
    return f"{value:.{decimals}f}"


def _value_axis(frame: Frame, value_step: float, unit: str) -> list[SafeString]:
    pieces = [format_html('<text class="unit" x="{}" y="{}">{}</text>', 4, frame.top - 5, unit)]
    for index in range(round(frame.top_value / value_step) + 1):
        value, y = index * value_step, frame.y(index * value_step)
        pieces.append(format_html(
            '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>',
            frame.left, frame.width - frame.right, f"{y:.1f}", f"{y:.1f}", frame.left - 6, f"{y + 4:.1f}",
            tick_label(value, value_step),
        ))  # fmt: skip
    return pieces


def _time_axis(frame: Frame, labels_y: float) -> list[SafeString]:
    pieces = []
    for epoch, label in time_ticks(frame.start, frame.span):
        x = f"{frame.x(epoch):.1f}"
        pieces.append(format_html(
            '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>',
            x, x, frame.top, frame.bottom, x, f"{labels_y:.1f}", label,
        ))  # fmt: skip
    return pieces


def _axes(frame: Frame, value_step: float, unit: str, labels_y: float) -> SafeString:
    border = format_html(
        '<rect class="plot-frame" x="{}" y="{}" width="{}" height="{}"/>',
        frame.left, frame.top, f"{frame.plot_width:.1f}", frame.plot_height,
    )  # fmt: skip
    return _join([*_value_axis(frame, value_step, unit), *_time_axis(frame, labels_y), border])


# ---------------------------------------------------------------------------------------------
# Latency: report rows of several agents


@dataclass
class ChartSeries:
    """One agent's report rows (oldest first), under the key the legend's toggle names."""

    key: str
    label: str
    color: str
    rows: list = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(1 for row in self.rows if row["p50_response_time_ms"] is not None)


def _row_epoch(row: dict) -> float:
    return _epoch(row["timestamp"])


def _runs(rows: list[dict], step: int, value) -> list[list[dict]]:
    """Rows with a value, split where a bucket is missing (a line must not bridge a gap)."""
    runs: list[list[dict]] = []
    previous = None
    for row in rows:
        if value(row) is None:
            previous = None
            continue
        if previous is None or _row_epoch(row) - _row_epoch(previous) > step * 1.5:
            runs.append([])
        runs[-1].append(row)
        previous = row
    return runs


def _tooltip(series: ChartSeries, row: dict) -> str:
    loss = row["packet_loss_percent"]
    return (
        f"{series.label} · {row['timestamp']:%Y-%m-%d %H:%M} UTC · "
        f"median {number(row['p50_response_time_ms'], 'ms')}, min {number(row['min_response_time_ms'], 'ms')}, "
        f"p95 {number(row['p95_response_time_ms'], 'ms')} · {row['successful_checks']}/{row['check_count']} ok"
        + (f" · loss {number(loss, '%')}" if loss is not None else "")
    )


def _band(frame: Frame, series: ChartSeries, step: int) -> SafeString:
    """min..p95 of each bucket as one path of rectangles (a bucket is an interval, not a moment)."""
    parts = []
    for row in series.rows:
        low, high = row["min_response_time_ms"], row["p95_response_time_ms"]
        if low is None or high is None:
            continue
        x0, x1 = frame.x(_row_epoch(row)), frame.x(_row_epoch(row) + step)
        parts.append(f"M{x0:.1f} {frame.y(high):.1f}H{x1:.1f}V{frame.y(low):.1f}H{x0:.1f}Z")
    if not parts:
        return SafeString("")
    return format_html('<path class="band" d="{}" fill="{}"/>', "".join(parts), series.color)


def _median(frame: Frame, series: ChartSeries, step: int) -> SafeString:
    segments = []
    for run in _runs(series.rows, step, lambda row: row["p50_response_time_ms"]):
        coordinates = [f"{frame.x(_row_epoch(r) + step / 2):.1f} {frame.y(r['p50_response_time_ms']):.1f}" for r in run]
        segments.append("M" + "L".join(coordinates))
    if not segments:
        return SafeString("")
    return format_html('<path class="median" d="{}" stroke="{}"/>', "".join(segments), series.color)


def _points(frame: Frame, series: ChartSeries, step: int) -> SafeString:
    radius = 2.4 if frame.plot_width / max(frame.span / step, 1) >= 6 else 1.6  # dense: smaller dots
    return format_html_join(
        "",
        '<circle class="point" cx="{}" cy="{}" r="{}" fill="{}" data-t="{}" data-p50="{}"><title>{}</title></circle>',
        (
            (f"{frame.x(_row_epoch(row) + step / 2):.1f}", f"{frame.y(row['p50_response_time_ms']):.1f}", radius,
             series.color, row["timestamp"].isoformat(), row["p50_response_time_ms"], _tooltip(series, row))
            for row in series.rows
            if row["p50_response_time_ms"] is not None
        ),
    )  # fmt: skip


def _outages(frame: Frame, series: ChartSeries, step: int) -> SafeString:
    """A red shade over each bucket where no check of this agent passed."""
    width = f"{frame.plot_width * step / frame.span:.2f}"
    return format_html_join(
        "",
        '<rect class="outage" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        (
            (f"{frame.x(_row_epoch(row)):.1f}", frame.top, width, frame.plot_height, _tooltip(series, row))
            for row in series.rows
            if row["status"] == "unreachable"
        ),
    )


def _strip(frame: Frame, series: ChartSeries, step: int, y: float) -> SafeString:
    """The agent's status per bucket under the plot, behind a swatch of its colour."""
    width = f"{max(frame.plot_width * step / frame.span, 1.0):.2f}"
    cells = format_html_join(
        "",
        '<rect class="status status-{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        (
            (row["status"], f"{frame.x(_row_epoch(row)):.1f}", f"{y:.1f}", width, STRIP_HEIGHT, _tooltip(series, row))
            for row in series.rows
        ),
    )
    swatch = format_html(
        '<rect class="strip-swatch" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
        frame.left - 12, f"{y:.1f}", 8, STRIP_HEIGHT, series.color, series.label,
    )  # fmt: skip
    return swatch + cells


def _series_group(frame: Frame, series: ChartSeries, step: int, strip_y: float) -> SafeString:
    return format_html(
        '<g class="series" data-series="{}" data-label="{}" data-points="{}">{}{}{}{}{}</g>',
        series.key,
        series.label,
        series.points,
        _outages(frame, series, step),
        _band(frame, series, step),
        _median(frame, series, step),
        _points(frame, series, step),
        _strip(frame, series, step, strip_y),
    )


def latency_top(series: list[ChartSeries]) -> float:
    """The highest value the axis must hold: every median, and the band's top but for the highest
    2 % (one spike must not flatten a day; a clipped band ends at the top edge)."""
    medians = [row["p50_response_time_ms"] for one in series for row in one.rows]
    tops = sorted(row["p95_response_time_ms"] for one in series for row in one.rows if row["p95_response_time_ms"])
    robust = tops[max(math.ceil(len(tops) * 0.98) - 1, 0)] if tops else 0.0
    return max([robust, *(value for value in medians if value is not None)])


def latency_chart(
    chart_id: str,
    *,
    start: datetime,
    span: timedelta,
    step: int,
    series: list[ChartSeries],
    width: int = 900,
    plot_height: int = 200,
    label: str = "Latency",
) -> SafeString:
    """The SVG of ``series`` over the window, its value axis sized to the highest p95 shown."""
    top_value, value_step = value_scale(latency_top(series))
    frame = Frame(_epoch(start), span.total_seconds(), top_value, width=width, plot_height=plot_height)
    strips_top = frame.bottom + 4
    labels_y = strips_top + len(series) * (STRIP_HEIGHT + STRIP_GAP) + 12
    height = int(labels_y + LABEL_SPACE - 12)
    groups = _join(
        _series_group(frame, one, step, strips_top + index * (STRIP_HEIGHT + STRIP_GAP))
        for index, one in enumerate(series)
    )
    return format_html(
        '<svg class="chart latency-chart" id="{}" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'data-step="{}" data-start="{}">{}{}</svg>',
        chart_id, width, height, label, step, start.isoformat(), _axes(frame, value_step, "ms", labels_y), groups,
    )  # fmt: skip


def legend(chart_id: str, series: list[ChartSeries]) -> SafeString:
    """One toggle button per series (charts.js shows and hides its group; without script, all show)."""
    return format_html_join(
        "",
        '<button type="button" class="series-toggle" data-chart="{}" data-series="{}" aria-pressed="true">'
        '<span class="swatch" style="background:{}"></span>{} <span class="quiet">({} points)</span></button>',
        ((chart_id, one.key, one.color, one.label, one.points) for one in series),
    )


def swatch(hex_color: str) -> SafeString:
    return format_html('<span class="swatch" style="background:{}"></span>', hex_color)


# ---------------------------------------------------------------------------------------------
# Plain lines: vitals


@dataclass
class Line:
    """(moment, value) pairs, oldest first; ``dots``: a ``<circle class="point">`` per pair."""

    key: str
    label: str
    color: str
    points: list
    dashed: bool = False
    dots: bool = True


def _usual_gap(line: Line, step: int) -> float:
    """How far apart two points may be and still be joined: 2.5 times the usual spacing (an
    agent's heartbeats may come less often than the chart's buckets)."""
    moments = [_epoch(moment) for moment, value in line.points if value is not None]
    spacings = sorted(later - earlier for earlier, later in pairwise(moments))
    usual = spacings[len(spacings) // 2] if spacings else step
    return max(usual, step) * 2.5


def _line_marks(frame: Frame, line: Line, step: int) -> SafeString:
    gap = _usual_gap(line, step)
    segments, previous = [], None
    for moment, value in line.points:
        if value is None:
            previous = None
            continue
        epoch = _epoch(moment)
        command = "M" if previous is None or epoch - previous > gap else "L"
        segments.append(f"{command}{frame.x(epoch):.1f} {frame.y(value):.1f}")
        previous = epoch
    path = format_html(
        '<path class="line{}" d="{}" stroke="{}"/>', " dashed" if line.dashed else "", "".join(segments), line.color
    )
    dots = format_html_join(
        "",
        '<circle class="point" cx="{}" cy="{}" r="2" fill="{}" data-t="{}" data-value="{}"><title>{}</title></circle>',
        (
            (f"{frame.x(_epoch(moment)):.1f}", f"{frame.y(value):.1f}", line.color, moment.isoformat(), value,
             f"{line.label} · {moment:%Y-%m-%d %H:%M} UTC · {number(value)}")
            for moment, value in line.points
            if value is not None and line.dots
        ),
    )  # fmt: skip
    return format_html('<g class="series" data-series="{}" data-label="{}">{}{}</g>', line.key, line.label, path, dots)


def line_chart(
    chart_id: str,
    *,
    start: datetime,
    span: timedelta,
    step: int,
    lines: list[Line],
    unit: str,
    top_value: float | None = None,
    width: int = 440,
    plot_height: int = 140,
) -> SafeString:
    """Lines over the window; the value axis from 0 to ``top_value`` (else the highest value)."""
    highest = top_value or max((value or 0 for line in lines for _m, value in line.points), default=0)
    top, value_step = value_scale(highest)
    frame = Frame(_epoch(start), span.total_seconds(), top, width=width, plot_height=plot_height)
    labels_y = frame.bottom + 16
    marks = _join(_line_marks(frame, line, step) for line in lines)
    return format_html(
        '<svg class="chart line-chart" id="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">{}{}</svg>',
        chart_id, width, int(labels_y + 8), unit, _axes(frame, value_step, unit, labels_y), marks,
    )  # fmt: skip
