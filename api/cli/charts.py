"""Charts of the reports' ``chart`` series, as SVG or PNG files (matplotlib, no display).

The same series the API returns for a page to draw; the CLI writes them to a file. Each
behaviour keeps one colour in every chart: a colour family per area of the methodology
(transport blues, food greens, …), a distinct shade per behaviour within it. The legend
stands outside the plot; a period with cells withheld for privacy is marked.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

from ledger.errors import InvalidInput  # noqa: E402
from ledger.methodology import available_versions, load_methodology  # noqa: E402

FORMATS = {".svg": "svg", ".png": "png"}
#: A colour family per area of the methodology.
AREA_COLOURS = {"transport": "Blues", "food": "Greens", "shopping": "Oranges",
                "housing": "Purples", "clothing": "RdPu", "travel": "YlOrBr"}
OTHER = (0.6, 0.6, 0.6, 1.0)
WITHHELD = "withheld: fewer than 3 citizens"

Panel = tuple[dict[str, Any], str]  # a report's chart, and its subtitle


@cache
def behaviour_colours() -> dict[str, tuple[float, float, float, float]]:
    """Every published behaviour's colour: its area's family, its own shade."""
    by_area: dict[str, list[str]] = defaultdict(list)
    for version in available_versions():
        for code, behaviour in load_methodology(version).behaviours.items():
            if code not in by_area[behaviour.area]:
                by_area[behaviour.area].append(code)
    colours = {}
    for area, codes in by_area.items():
        family = matplotlib.colormaps[AREA_COLOURS.get(area, "Greys")]
        for i, code in enumerate(codes):
            colours[code] = family(0.35 + 0.6 * i / max(1, len(codes) - 1))
    return colours


def write_chart(chart: dict[str, Any], target: Path, *, title: str,
                withheld: dict[str, int] | None = None) -> None:
    """Draw ``chart`` (a report's series, grams) in kg CO2e and write it to ``target``;
    ``withheld``: how many cells each period withholds."""
    write_charts([(chart, "")], target, title=title, withheld=withheld)


def write_charts(panels: list[Panel], target: Path, *, title: str,
                 withheld: dict[str, int] | None = None) -> None:
    """Several charts side by side in one file (a statement: by behaviour, by month)."""
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise InvalidInput("the chart file must end in .svg or .png", field="--chart")
    widths = [max(5.0, 0.45 * len(chart["x"]) + 3) for chart, _ in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths) + 2.5, 4.8),
                             layout="constrained", squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    try:
        for ax, (chart, subtitle) in zip(axes[0], panels, strict=True):
            _draw(ax, chart, withheld or {})
            if subtitle:
                ax.set_title(subtitle, fontsize="medium")
        fig.suptitle(title)
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, format=fmt, dpi=110,
                    metadata={"Date": None} if fmt == "svg" else None)
    finally:
        plt.close(fig)


def _draw(ax: Any, chart: dict[str, Any], withheld: dict[str, int]) -> None:
    x: list[str] = chart["x"]
    colours = behaviour_colours()
    if not x:
        ax.text(0.5, 0.5, "no entries in this period", ha="center", va="center")
        ax.set_axis_off()
        return
    if chart["type"] == "bar":  # one bar per behaviour, each in its colour
        values = [v / 1000 for v in chart["series"][0]["values"]]
        ax.barh(x, values, color=[colours.get(b, OTHER) for b in x])
        ax.invert_yaxis()
        ax.set_xlabel("kg CO2e reduced")
        return
    # stackedBar: one bar per period, a band per behaviour
    bottom = [0.0] * len(x)
    for series in chart["series"]:
        values = [v / 1000 for v in series["values"]]
        ax.bar(x, values, bottom=bottom, label=series["name"],
               color=colours.get(series["name"], OTHER))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    marked = [p for p in x if withheld.get(p)]
    if marked:  # a hatched cap: something is there, not shown
        cap = max(max(bottom) * 0.04, 0.001)
        ax.bar(marked, [cap] * len(marked), bottom=[bottom[x.index(p)] for p in marked],
               color="white", edgecolor="0.45", hatch="///", label=WITHHELD)
    ax.set_ylabel("kg CO2e reduced")
    ax.tick_params(axis="x", labelrotation=60 if len(x) > 8 else 0)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0.0, frameon=False)
