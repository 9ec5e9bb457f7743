"""Line charts as plain geometry; `templates/traces/_chart.html` draws them as SVG.

Server-rendered SVG rather than a JavaScript charting library: the charts then work without
JavaScript (the pages must), print, scale on a phone, cost no vendored bundle, and a test can
read the very numbers that were drawn.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from app.traces.service import TraceView

MAX_MARKERS = 12


@dataclass(frozen=True)
class Frame:
    """A chart's size in SVG user units and how many ticks fit on it. The SVG scales to its
    box, so its text (12–13 user units, static/css/app.css) is only readable where one user
    unit is about one CSS pixel: a phone gets a frame of its own, narrow, with fewer ticks."""

    width: int
    height: int
    left: int  # room for the y-axis ticks and label
    right: int
    top: int
    bottom: int  # room for the x-axis ticks and label
    x_ticks: int
    y_ticks: int


# The wide frame is drawn 580–1300 CSS px wide (scale 0.9–2, so its text is 13 units); the
# narrow one, below 40rem, about 345 px on a 390 px phone and 315 on a 360 px one (scale 0.95).
WIDE = Frame(width=640, height=260, left=64, right=624, top=16, bottom=216, x_ticks=10, y_ticks=5)
NARROW = Frame(width=330, height=240, left=56, right=320, top=14, bottom=196, x_ticks=5, y_ticks=4)


@dataclass(frozen=True)
class Series:
    """One line: a name for the legend, (x, y) points, how it is drawn."""

    name: str
    points: list[tuple[float, float]]
    style: str = "primary"  # a CSS class: primary | baseline | secondary
    step: bool = False  # a staircase: the value holds until the next point, where it steps


@dataclass(frozen=True)
class Tick:
    """An axis tick: where (in pixels) and what it says."""

    at: float
    label: str


@dataclass(frozen=True)
class Line:
    """A series placed on the chart: its SVG path and its legend entry."""

    name: str
    style: str
    path: str


@dataclass(frozen=True)
class Marker:
    """A vertical line at an x value, e.g. where the learning rate jumps."""

    at: float
    label: str


@dataclass(frozen=True)
class Row:
    """One x value of a chart's data, as its table shows it: each series' value there
    (blank where a series has none)."""

    x: str
    values: list[str]


@dataclass(frozen=True)
class Chart:
    """Everything the SVG template needs, in the user units of its frame; the same chart on
    a phone's frame; and the numbers drawn, as a table for whoever cannot see the lines."""

    title: str
    x_label: str
    y_label: str
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    markers: list[Marker] = field(default_factory=list)
    frame: Frame = WIDE
    rows: list[Row] = field(default_factory=list)
    narrow: Chart | None = None


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 × a power of ten apart) covering [low, high]."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def _format(value: float, percent: bool) -> str:
    if percent:
        return f"{value:.0%}"
    return f"{value:.3g}"


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    percent: bool = False,
    markers: Sequence[tuple[float, str]] = (),
    y_from_zero: bool = False,
) -> Chart:
    """Scale `series` into a chart with labelled, rounded ticks on both axes, drawn once for
    a wide screen and once for a phone, with the table of its numbers."""

    def draw(frame: Frame) -> Chart:
        return _draw(
            title, series, frame, x_label, y_label, percent, markers, y_from_zero=y_from_zero
        )

    wide = draw(WIDE)
    return replace(wide, narrow=draw(NARROW), rows=_rows(series, percent))


def _draw(
    title: str,
    series: Sequence[Series],
    frame: Frame,
    x_label: str,
    y_label: str,
    percent: bool,
    markers: Sequence[tuple[float, str]],
    *,
    y_from_zero: bool,
) -> Chart:
    # Every series on the same x values, a staircase too: the learning rate chart shows the
    # very epochs the loss chart beside it does (epoch e's rate, from e to e + 1; the last
    # epoch's, at its point), not one more.
    xs = [x for s in series for x, _ in s.points] or [0.0, 1.0]
    ys = [y for s in series for _, y in s.points if math.isfinite(y)] or [0.0, 1.0]
    x_low, x_high = min(xs), max(xs)
    y_ticks = nice_ticks(0.0 if y_from_zero else min(ys), max(ys), frame.y_ticks)
    y_low, y_high = y_ticks[0], y_ticks[-1]
    x_span = (x_high - x_low) or 1.0

    def px(x: float) -> float:
        return frame.left + (x - x_low) / x_span * (frame.right - frame.left)

    def py(y: float) -> float:
        return frame.bottom - (y - y_low) / ((y_high - y_low) or 1.0) * (frame.bottom - frame.top)

    lines = []
    for s in series:
        points = [(x, y) for x, y in s.points if math.isfinite(y)]
        if s.step:
            stepped: list[tuple[float, float]] = []
            for (x, y), (next_x, _) in itertools.pairwise(points):
                stepped += [(x, y), (next_x, y)]
            if points:
                last_x, last_y = points[-1]
                points = [*stepped, (last_x, last_y)]
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(points)
        )
        lines.append(Line(s.name, s.style, path))

    x_step = max(1, math.ceil((x_high - x_low) / frame.x_ticks))
    x_values = [x_low + i * x_step for i in range(int((x_high - x_low) // x_step) + 1)]
    return Chart(
        title=title,
        x_label=x_label,
        y_label=y_label,
        lines=lines,
        x_ticks=[Tick(px(x), f"{x:g}") for x in x_values],
        y_ticks=[Tick(py(y), _format(y, percent)) for y in y_ticks],
        markers=[Marker(px(x), label) for x, label in markers],
        frame=frame,
    )


def _rows(series: Sequence[Series], percent: bool) -> list[Row]:
    """The chart's numbers, one row per x value, one column per series."""
    by_x: dict[float, list[str]] = {}
    for column, s in enumerate(series):
        for x, y in s.points:
            row = by_x.setdefault(x, [""] * len(series))
            row[column] = f"{y:.1%}" if percent else f"{y:.4g}"
    return [Row(f"{x:g}", values) for x, values in sorted(by_x.items())]


def trace_charts(trace: TraceView, baseline: TraceView | None = None) -> list[Chart]:
    """The charts of a trace — loss, accuracy, learning rate — with a baseline overlaid."""

    def points(view: TraceView, attr: str) -> list[tuple[float, float]]:
        return [(e.epoch, getattr(e, attr)) for e in view.epochs if getattr(e, attr) is not None]

    unit = "epoch" if trace.kind == "pipeline" else "step"
    # Mark where the LR jumps (a step, a restart: see service.lr_jumps), not every change —
    # cosine changes every epoch, and the curve says so. Past MAX_MARKERS (a long staircase)
    # the markers would only hide the curves.
    changes = (
        [(epoch, "learning rate jumps") for epoch in trace.lr_jumps]
        if len(trace.lr_jumps) <= MAX_MARKERS
        else []
    )
    lr_series = [Series("learning rate", points(trace, "lr"), "primary", step=True)]
    if baseline is not None:
        lr_series.insert(
            0, Series("lesson's learning rate", points(baseline, "lr"), "baseline", step=True)
        )
    charts = []
    if trace.kind == "pipeline":
        loss = [
            Series("train loss", points(trace, "train_loss"), "secondary"),
            Series("test loss", points(trace, "test_loss"), "primary"),
        ]
        accuracy = [Series("test accuracy", points(trace, "test_accuracy"), "primary")]
        if baseline is not None:
            loss.insert(0, Series("lesson's test loss", points(baseline, "test_loss"), "baseline"))
            accuracy.insert(
                0, Series("lesson's test accuracy", points(baseline, "test_accuracy"), "baseline")
            )
        charts += [
            line_chart(
                "Loss per epoch",
                loss,
                x_label="epoch",
                y_label="cross-entropy loss",
                markers=changes,
                y_from_zero=True,
            ),
            line_chart(
                "Test accuracy per epoch",
                accuracy,
                x_label="epoch",
                y_label="accuracy",
                percent=True,
                markers=changes,
            ),
        ]
    charts.append(
        line_chart(
            f"Learning rate in force during each {unit}",
            lr_series,
            x_label=unit,
            y_label="learning rate",
            markers=changes,
            y_from_zero=True,
        )
    )
    return charts


def comparison_chart(
    target: list[float], mine: list[float], divergence: int | None, *, unit: str = "epoch"
) -> Chart:
    """A code answer's learning rate over the target's, the first difference marked; `unit`
    is what one point is (an epoch, or a step of a loop that steps per batch)."""
    markers = [(float(divergence), "first difference")] if divergence is not None else []
    return line_chart(
        "Your learning rate and the target's",
        [
            Series(
                "target", [(float(i), lr) for i, lr in enumerate(target)], "baseline", step=True
            ),
            Series("yours", [(float(i), lr) for i, lr in enumerate(mine)], "primary", step=True),
        ],
        x_label=f"{unit} (from 0)",
        y_label="learning rate",
        markers=markers,
        y_from_zero=True,
    )


def prediction_chart(real: list[float], predicted: list[float], misses: Sequence[int]) -> Chart:
    """A step-through's real learning rate (epoch 0 on) and the learner's predictions (epoch
    1 on), the epochs they missed marked."""
    return line_chart(
        "Your predictions and the real learning rate",
        [
            Series("real run", [(float(e), lr) for e, lr in enumerate(real)], "baseline", True),
            Series(
                "your predictions",
                [(float(e), lr) for e, lr in enumerate(predicted, start=1)],
                "primary",
                step=True,
            ),
        ],
        x_label="epoch (from 0)",
        y_label="learning rate",
        markers=[(float(epoch), "a miss") for epoch in misses[:MAX_MARKERS]],
        y_from_zero=True,
    )
