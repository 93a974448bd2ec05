"""Charts of the reports' ``chart`` series, as SVG or PNG files (matplotlib, no display).

The same series the API returns for a page to draw; the CLI writes them to a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

from ledger.errors import InvalidInput  # noqa: E402

FORMATS = {".svg": "svg", ".png": "png"}


def write_chart(chart: dict[str, Any], target: Path, *, title: str) -> None:
    """Draw ``chart`` (a report's series, grams) in kg CO2e and write it to ``target``."""
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise InvalidInput("the chart file must end in .svg or .png", field="chart")
    x: list[str] = chart["x"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(x) + 3), 4.5), layout="constrained")
    try:
        if not x:
            ax.text(0.5, 0.5, "no entries in this period", ha="center", va="center")
            ax.set_axis_off()
        elif chart["type"] == "bar":
            values = [v / 1000 for v in chart["series"][0]["values"]]
            ax.barh(x, values, color="#2e7d32")
            ax.invert_yaxis()
            ax.set_xlabel("kg CO2e reduced")
        else:  # stackedBar: one bar per period, a band per behaviour
            bottom = [0.0] * len(x)
            for series in chart["series"]:
                values = [v / 1000 for v in series["values"]]
                ax.bar(x, values, bottom=bottom, label=series["name"])
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
            ax.set_ylabel("kg CO2e reduced")
            ax.tick_params(axis="x", labelrotation=60 if len(x) > 8 else 0)
            ax.legend(fontsize="small", ncols=2 if len(chart["series"]) > 8 else 1)
        ax.set_title(title)
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, format=fmt, dpi=110,
                    metadata={"Date": None} if fmt == "svg" else None)
    finally:
        plt.close(fig)
