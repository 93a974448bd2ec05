"""Methodologies as data: loading the versioned files and quantifying a behaviour.

A methodology file (``ledger/methodologies/vN.json``) names each behaviour's unit,
baseline and project emission factors with their sources, caps and plausibility bounds,
and the points rule. Factors are decimal strings and arithmetic is exact (fractions);
a reduction is floored to whole grams, which errs on the conservative side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any

from ledger.errors import InvalidInput, MethodologyError

AREAS = {"clothing", "food", "housing", "transport", "travel", "shopping"}


@dataclass(frozen=True)
class Behaviour:
    code: str
    title: str
    area: str
    unit: str
    units_per_factor_unit: int
    baseline: Fraction  # g CO2e per factor unit
    project: Fraction
    daily_cap_grams: int
    max_quantity_per_record: int
    partner_kinds: tuple[str, ...]

    def reduction_grams(self, quantity: int) -> int:
        """(baseline − project) × quantity, in whole grams, never negative, before caps."""
        exact = (self.baseline - self.project) * quantity / self.units_per_factor_unit
        return max(0, int(exact // 1))


@dataclass(frozen=True)
class Methodology:
    version: int
    effective_from: date
    grams_per_point: int
    points_rule_version: int
    day_offset: timedelta  # local day boundary for caps, as an offset from UTC
    behaviours: dict[str, Behaviour]

    def behaviour(self, code: str) -> Behaviour:
        try:
            return self.behaviours[code]
        except KeyError:
            raise InvalidInput(f"unknown behaviour {code!r} in methodology v{self.version}",
                               field="behaviour") from None

    def points(self, grams: int) -> int:
        return grams // self.grams_per_point

    def local_day(self, unix_seconds: int) -> int:
        """The day number (since 1970-01-01, local) a behaviour counts toward for caps."""
        return int((unix_seconds + self.day_offset.total_seconds()) // 86400)

    def effective_from_unix(self) -> int:
        start = datetime.combine(self.effective_from, datetime.min.time(), UTC)
        return int((start - self.day_offset).timestamp())


def _factor(obj: dict[str, Any], grid: Fraction, where: str) -> Fraction:
    keys = {"g_co2e_per_factor_unit", "kwh_per_factor_unit"} & obj.keys()
    if len(keys) != 1 or not obj.get("source"):
        raise MethodologyError("a factor needs exactly one value key and a source", field=where)
    key = keys.pop()
    try:
        value = Fraction(str(obj[key]))
    except (ValueError, ZeroDivisionError) as exc:
        raise MethodologyError(f"{obj[key]!r} is not a decimal", field=where) from exc
    if not isinstance(obj[key], str) or value < 0:
        raise MethodologyError("factors are non-negative decimal strings", field=where)
    return value * grid if key == "kwh_per_factor_unit" else value


def _behaviour(raw: dict[str, Any], grid: Fraction, index: int) -> Behaviour:
    where = f"behaviours[{index}]"
    try:
        code = raw["code"]
        if not (isinstance(code, str) and code.isascii() and 0 < len(code) <= 32):
            raise MethodologyError("code must be 1-32 ASCII characters", field=f"{where}.code")
        if raw["area"] not in AREAS:
            raise MethodologyError(f"area must be one of {sorted(AREAS)}", field=f"{where}.area")
        ints = {k: raw[k] for k in ("units_per_factor_unit", "daily_cap_grams",
                                    "max_quantity_per_record")}
        for k, v in ints.items():
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise MethodologyError("must be a positive integer", field=f"{where}.{k}")
        return Behaviour(
            code=code, title=raw["title"], area=raw["area"], unit=raw["unit"],
            units_per_factor_unit=ints["units_per_factor_unit"],
            baseline=_factor(raw["baseline"], grid, f"{where}.baseline"),
            project=_factor(raw["project"], grid, f"{where}.project"),
            daily_cap_grams=ints["daily_cap_grams"],
            max_quantity_per_record=ints["max_quantity_per_record"],
            partner_kinds=tuple(raw["partner_kinds"]),
        )
    except KeyError as exc:
        raise MethodologyError(f"missing key {exc.args[0]!r}", field=where) from None


def parse_methodology(doc: dict[str, Any]) -> Methodology:
    try:
        grid = Fraction(str(doc["grid_emission_factor"]["g_co2e_per_kwh"]))
        points = doc["points"]
        behaviours = [_behaviour(b, grid, i) for i, b in enumerate(doc["behaviours"])]
        methodology = Methodology(
            version=int(doc["version"]),
            effective_from=date.fromisoformat(doc["effective_from"]),
            grams_per_point=int(points["grams_per_point"]),
            points_rule_version=int(points["rule_version"]),
            day_offset=timedelta(hours=int(doc.get("cap_day_utc_offset_hours", 8))),
            behaviours={b.code: b for b in behaviours},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MethodologyError(f"malformed methodology: {exc}", field="methodology") from exc
    if len(methodology.behaviours) != len(behaviours):
        raise MethodologyError("behaviour codes must be unique", field="behaviours")
    if methodology.grams_per_point <= 0:
        raise MethodologyError("grams_per_point must be positive", field="points")
    return methodology


def methodology_text(version: int) -> str:
    path = resources.files("ledger") / "methodologies" / f"v{version}.json"
    try:
        return path.read_text()
    except FileNotFoundError:
        raise MethodologyError(f"no methodology version {version}", field="methodology") from None


@cache
def load_methodology(version: int) -> Methodology:
    return parse_methodology(json.loads(methodology_text(version)))


@cache
def available_versions() -> tuple[int, ...]:
    folder = resources.files("ledger") / "methodologies"
    return tuple(sorted(int(p.name[1:-5]) for p in folder.iterdir()
                        if p.name.startswith("v") and p.name.endswith(".json")))


def methodology_in_force(occurred_at: int) -> Methodology:
    """The latest version whose effective date is on or before the behaviour."""
    chosen = None
    for version in available_versions():
        m = load_methodology(version)
        if m.effective_from_unix() <= occurred_at:
            chosen = m
    if chosen is None:
        raise InvalidInput("no methodology was in force at that time", field="occurred_at")
    return chosen
