"""A chart of progress records (a training run's loss and eval loss against its step): a real
plot with axes and a legend (textual-plotext), redrawn only when a poll brought new points.

What a chart draws is declared by a kind's presenter (`Chart`, `Series`); `chart_series` is
the pure part, so what a chart will show can be tested without a screen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from textual_plotext import PlotextPlot


@dataclass(frozen=True)
class Series:
    """One line of a chart: the record field it draws, its legend and colour."""

    field: str
    label: str
    color: str = "cyan"


@dataclass(frozen=True)
class Chart:
    """The records' `series` drawn against `x`, each from the records that hold both (a run's
    loss comes in `log` records, its eval loss in `eval` records)."""

    x: str
    series: tuple[Series, ...]
    title: str = ""
    y_label: str = ""


Drawn = tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]
"""Per series, its x and y values."""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def chart_series(chart: Chart, points: Sequence[dict[str, Any]]) -> Drawn:
    """Pure: each series' (xs, ys) by x; a record whose x or y is missing or not a number is
    left out, and where x repeats the later record wins (a run resumed from a checkpoint
    trains some steps again: the chart shows the latest pass)."""
    drawn = []
    for series in chart.series:
        by_x: dict[float, float] = {}
        for p in points:
            x, y = _number(p.get(chart.x)), _number(p.get(series.field))
            if x is not None and y is not None:
                by_x[x] = y
        xs = tuple(sorted(by_x))
        drawn.append((xs, tuple(by_x[x] for x in xs)))
    return tuple(drawn)


class LossChart(PlotextPlot):
    """Lines of progress records against a step, with axes and a legend."""

    DEFAULT_CSS = """
    LossChart {
        width: 1fr;
        height: 12;
        min-width: 30;
    }
    """

    def __init__(self, chart: Chart, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.chart = chart
        self.drawn: Drawn = tuple(((), ()) for _ in chart.series)
        """What the chart shows now (tests watch it move)."""

    def on_mount(self) -> None:
        super().on_mount()
        self.draw()

    def plot(self, points: Sequence[dict[str, Any]]) -> None:
        """Show these records; nothing is redrawn when they add nothing to the chart."""
        drawn = chart_series(self.chart, points)
        if drawn != self.drawn:
            self.drawn = drawn
            self.draw()

    @property
    def point_count(self) -> int:
        return sum(len(xs) for xs, _ in self.drawn)

    def draw(self) -> None:
        plt, chart = self.plt, self.chart
        plt.clear_data()
        plt.title(chart.title or "")
        plt.xlabel(chart.x)
        plt.ylabel(chart.y_label)
        for series, (xs, ys) in zip(chart.series, self.drawn, strict=True):
            if xs:
                plt.plot(list(xs), list(ys), label=series.label, color=series.color,
                         marker="braille")
        every_x = sorted({x for drawn_xs, _ in self.drawn for x in drawn_xs})
        if every_x and all(x.is_integer() for x in every_x):  # steps: whole numbers
            low, high = every_x[0], every_x[-1]
            ticks = sorted({float(round(low + (high - low) * i / 4)) for i in range(5)})
            plt.xticks(ticks, [f"{t:.0f}" for t in ticks])
        if not self.point_count:
            plt.title(f"{chart.title + ': ' if chart.title else ''}no points yet")
        self.refresh()
