"""``carbon-ledger report ...``: statements, contributions and city totals, as tables,
JSON, and charts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress

from api.cli.base import Chain, DataDir, RpcUrl, app, emit_json, option_names, out, table
from api.composition import Container, container
from ledger import accounts, listings
from ledger.anchoring import ChainReader
from ledger.errors import InvalidInput
from ledger.reports import Window, citizen_statement, city_totals, partner_contribution

report_app = typer.Typer(no_args_is_help=True,
                         help="Reports: a citizen's statement, a partner's contribution, city totals.")
app.add_typer(report_app, name="report")

From = Annotated[str, typer.Option("--from", help="first local date, YYYY-MM-DD")]
To = Annotated[str, typer.Option("--to", help="last local date (inclusive), YYYY-MM-DD")]
Period = Annotated[str, typer.Option(help="day | month")]
Json = Annotated[bool, typer.Option("--json", help="print the report as JSON")]
Chart = Annotated[Path | None, typer.Option("--chart", help="also draw it to this .svg or .png "
                                              "(a statement: by behaviour and by month)")]


def window(first: str, last: str) -> Window:
    days = []
    for name, text in (("from", first), ("to", last)):
        try:
            days.append(date.fromisoformat(text))
        except ValueError:
            raise InvalidInput(f"{text!r} is not a YYYY-MM-DD date", field=f"--{name}") from None
    with option_names(**{"from": "--from", "to": "--to"}):
        return Window.of(days[0], days[1])


def _show(report: dict[str, Any], as_json: bool, chart: Path | None, title: str,
          columns: list[str], rows: list[list[Any]],
          panels: list[tuple[dict[str, Any], str]] | None = None) -> None:
    if chart is not None:
        from api.cli.charts import write_charts

        withheld: dict[str, int] = {}
        for row in report.get("rows", []):
            if row.get("withheld"):
                withheld[row["period"]] = withheld.get(row["period"], 0) + 1
        write_charts(panels or [(report["chart"], "")], chart, title=title, withheld=withheld)
    if as_json:
        emit_json(report, None)
        return
    out.print(table(title, columns, rows))
    if chart is not None:
        out.print(f"chart written to {chart}")


def _kg(grams: int | None) -> str:
    return "withheld" if grams is None else f"{grams / 1000:,.3f}"


@report_app.command("statement")
def statement(citizen: Annotated[str, typer.Argument(help="the citizen's pseudonym")],
              first: From, last: To, data_dir: DataDir = None, as_json: Json = False,
              chart: Chart = None) -> None:
    """A citizen's period statement: kg CO2e by behaviour, points earned and spent."""
    c = container(data_dir)
    span = window(first, last)
    with c.db.session(snapshot=True) as s:
        who = accounts.get_citizen(s, citizen).id
        report = citizen_statement(s, who, span)
        months = listings.citizen_months(s, who, since=span.since, until=span.until)
    rows = [[b["behaviour"], b["entries"], _kg(b["reductionGrams"]), b["points"]]
            for b in report["behaviours"]]
    rows.append(["total", report["entries"], _kg(report["reductionGrams"]),
                 report["pointsEarned"]])
    _show(report, as_json, chart, f"{citizen}, {first} to {last}",
          ["behaviour", "entries", "kg CO2e", "points"], rows,
          panels=[(report["chart"], "by behaviour"), (months, "by month")])
    if not as_json:
        out.print(f"points spent {report['pointsSpent']}, balance {report['balance']}; "
                  f"{report['entriesAnchored']} of {report['entries']} entries anchored")


@report_app.command("partner")
def partner(code: Annotated[str, typer.Argument(help="partner code")], first: From, last: To,
            period: Period = "month", data_dir: DataDir = None, as_json: Json = False,
            chart: Chart = None) -> None:
    """A partner's contribution: reductions from its records, by behaviour and period."""
    c = container(data_dir)
    with c.db.session(snapshot=True) as s, option_names(period="--period"):
        report = partner_contribution(s, accounts.get_partner(s, code).id,
                                      window(first, last), period=period)
    _show(report, as_json, chart, f"{code}: contribution by {period}",
          ["period", "behaviour", "records", "kg CO2e"],
          [[r["period"], r["behaviour"], r["records"], _kg(r["reductionGrams"])]
           for r in report["rows"]])


@report_app.command("city")
def city(first: From, last: To, period: Period = "day", data_dir: DataDir = None,
         as_json: Json = False, chart: Chart = None) -> None:
    """City totals by day or whole month and behaviour, for days already final; cells of
    fewer than 3 citizens withheld, and totals only of the cells shown."""
    c = container(data_dir)
    with c.db.session(snapshot=True) as s, option_names(period="--period"):
        report = city_totals(s, window(first, last), period=period)
    _show(report, as_json, chart, f"City totals by {period}, {first} to {last}",
          ["period", "behaviour", "citizens", "entries", "kg CO2e"],
          [[r["period"], r["behaviour"], r["citizens"] or "-", r["entries"] or "-",
            _kg(r["reductionGrams"])] for r in report["rows"]])
    if not as_json:
        out.print(f"total of the cells shown {_kg(report['reductionGrams'])} kg CO2e from "
                  f"{report['citizens']} citizens; final through {report['closedThrough']}")


@app.command()
def audit(batch_id: Annotated[int, typer.Argument(help="a sealed batch's id")],
          data_dir: DataDir = None, as_json: Json = False,
          workers: Annotated[int, typer.Option(min=1, max=64, help="processes auditing slices "
                                               "of a large batch")] = 2,
          chain: Chain = None, rpc: RpcUrl = None,
          no_chain: Annotated[bool, typer.Option("--no-chain", help="recompute only: do not "
                                                 "hold the batch against the chain")] = False,
          ) -> None:
    """Recompute a batch from the partners' raw records and the published methodology, and
    hold the recomputed root, leaf count and content hash against what the chain holds for
    the batch; exit 1 naming every entry that does not hold (the first 1000; all are
    counted) and any difference from the chain."""
    from ledger.audit import audit_batch
    from ledger.errors import VerificationError

    c = container(data_dir, chain, rpc)
    with _audit_chain(c, skip=no_chain) as (reader, unchecked), \
            c.db.session(snapshot=True) as s, _audit_progress(batch_id) as progress:
        report = audit_batch(s, batch_id, chain=reader, progress=progress, workers=workers)
    if as_json:
        emit_json({**report.as_dict(), "heldAgainstChain": reader is not None}, None)
    else:
        if unchecked:
            out.print(f"not held against the chain: {unchecked}", highlight=False)
        for problem in report.problems:
            out.print(f"[red]✗[/red] {problem}", highlight=False, soft_wrap=True)
        if report.problem_count > len(report.problems):
            out.print(f"... and {report.problem_count - len(report.problems)} more problems",
                      highlight=False)
        out.print(f"batch {batch_id}: {report.entries} entries, {report.credits} credits "
                  f"({report.capped} capped), {report.grams} g CO2e: "
                  + ("recomputed, all hold" if report.ok else f"{report.problem_count} problems"),
                  highlight=False)
        _show_recomputed(report.as_dict())
    if not report.ok:
        raise VerificationError(f"batch {batch_id} does not recompute", field="batch")


@contextmanager
def _audit_chain(c: Container, *, skip: bool) -> Iterator[tuple[ChainReader | None, str | None]]:
    """The ledger's contract, read-only, on the chain `chain check` reads (the configured
    RPC, else the data dir's managed node), or None and why not."""
    if skip:
        yield None, "--no-chain"
        return
    if c.settings.chain == "tester":
        yield None, "an in-process chain lives only as long as one command"
        return
    with c.node_url() as url:
        reader = c.ledger_reader(url)
        yield reader, (None if reader is not None
                       else "this ledger never deployed to the node's chain")


@contextmanager
def _audit_progress(batch_id: int) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on standard error when it is a terminal (nothing on a pipe or in a
    file, so the output and ``--json`` stay as they are). Refreshed by the audit's own
    calls, not by a thread: the audit may fork its workers."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(console=console, auto_refresh=False, transient=True) as bar:
        task = bar.add_task(f"auditing batch {batch_id}", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, refresh=True)
        yield advance


def _show_recomputed(report: dict[str, Any]) -> None:
    """The recomputed root, leaf count and content hash beside the sealed ones (the ones
    its anchor sent: `carbon-ledger chain check` holds them against the chain)."""
    ours, sealed = report["recomputed"] or {}, report["sealed"] or {}
    for name, key in (("root", "root"), ("leaves", "leafCount"), ("content hash", "contentHash")):
        mine, theirs = ours.get(key), sealed.get(key)
        mark = "=" if mine == theirs else "[red]≠[/red]"
        out.print(f"{name}\n  recomputed  {'-' if mine is None else mine}\n"
                  f"  sealed    {mark} {'-' if theirs is None else theirs}", highlight=False,
                  soft_wrap=True)
