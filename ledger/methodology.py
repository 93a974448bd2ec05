"""Methodologies as data: loading the versioned files and quantifying a behaviour.

A methodology file (``ledger/methodologies/vN.json``) names each behaviour's unit,
baseline and project emission factors with their sources, caps and plausibility bounds,
the cross-partner de-duplication rule, and the points rule. Factors are decimal strings
and arithmetic is exact (fractions); a reduction is floored to whole grams, which errs on
the conservative side.

Versions are immutable once published (a test pins each file's hash): a new factor is a
new version with a later ``effective_from``, and a record is quantified by the version in
force when the behaviour happened. How old a record a partner may still submit is the
rule of the version in force when it is received (:func:`submission_window`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from functools import cache, cached_property, lru_cache
from importlib import resources
from typing import Any

from ledger.errors import InvalidInput, MethodologyError, NotFound
from ledger.json_input import parse_json

AREAS = {"clothing", "food", "housing", "transport", "travel", "shopping"}

#: How many days after a behaviour began a partner may still report it, for versions
#: that do not state ``submission_window_days`` (1 and 2 were published before the rule;
#: the next version states it). The longest behaviour, a 30-night hotel stay reported at
#: check-out, is 31 days old when it arrives; two weeks more leave room for a return
#: window (an appliance is reported once it can no longer be returned) or a partner's
#: late batch. With the caps, the window bounds what one report can credit, per citizen
#: and behaviour: the daily caps of the ~46 local days it spans, and the monthly caps of
#: at most 3 calendar months.
#: a published methodology file is read with the same bounds as any JSON from outside
MAX_METHODOLOGY_BYTES = 1024 * 1024
DEFAULT_SUBMISSION_WINDOW_DAYS = 45


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
    monthly_cap_grams: int | None = None
    max_speed_kmh: Fraction | None = None  # needs the record's end time
    max_records_per_hour: int | None = None
    dedup_window_seconds: int | None = None  # None: no cross-partner matching

    def speed_kmh(self, quantity: int, seconds: int) -> Fraction:
        """Average speed of a distance record (unit ``m``) over ``seconds``."""
        return Fraction(quantity * 3600, max(seconds, 1) * 1000)

    def too_fast(self, quantity: int, seconds: int) -> bool:
        """Whether ``quantity`` metres in ``seconds`` is above the speed bound: the same
        comparison as ``speed_kmh(...) > max_speed_kmh``, in integers."""
        bound = self.max_speed_kmh
        if bound is None:
            return False
        return quantity * 3600 * bound.denominator > bound.numerator * max(seconds, 1) * 1000

    @cached_property
    def _grams_per_unit(self) -> Fraction:
        """(baseline − project) per reported unit, exact; worked out once per behaviour."""
        return (self.baseline - self.project) / self.units_per_factor_unit

    def reduction_grams(self, quantity: int) -> int:
        """(baseline − project) × quantity, in whole grams (floored), never negative, before
        caps: exact integer arithmetic on the fraction's numerator and denominator."""
        rate = self._grams_per_unit
        return max(0, rate.numerator * quantity // rate.denominator)


@dataclass(frozen=True)
class Methodology:
    version: int
    effective_from: date
    grams_per_point: int
    points_rule_version: int
    day_offset: timedelta  # local day boundary for caps, as an offset from UTC
    behaviours: dict[str, Behaviour]
    submission_window_days: int = DEFAULT_SUBMISSION_WINDOW_DAYS
    states_submission_window: bool = False  # or the default above applies

    def behaviour(self, code: str) -> Behaviour:
        try:
            return self.behaviours[code]
        except KeyError:
            raise InvalidInput(f"unknown behaviour {code!r} in methodology v{self.version}",
                               field="behaviour") from None

    def points(self, grams: int) -> int:
        return grams // self.grams_per_point

    @cached_property
    def _offset_seconds(self) -> int:
        return int(self.day_offset.total_seconds())

    def local_day(self, unix_seconds: int) -> int:
        """The day number (since 1970-01-01, local) a behaviour counts toward for caps."""
        return (unix_seconds + self._offset_seconds) // 86400

    def local_month(self, unix_seconds: int) -> int:
        """The month (``year * 12 + month - 1``, local) a behaviour counts toward for caps."""
        return month_of_day(self.local_day(unix_seconds))

    def effective_from_unix(self) -> int:
        start = datetime.combine(self.effective_from, datetime.min.time(), UTC)
        return int((start - self.day_offset).timestamp())


@dataclass(frozen=True)
class SubmissionWindow:
    """How long after a behaviour began a partner may still submit it."""

    days: int
    version: int  # the methodology that sets it: the one in force at receipt
    stated: bool  # by the file, or the code's default for versions before the rule

    def oldest(self, now: int) -> int:
        """The earliest ``occurred_at`` accepted in a submission received at ``now``."""
        return now - self.days * 86400

    def too_old(self) -> str:
        source = "" if self.stated else ", the default for versions that state none"
        return (f"more than {self.days} days before it was received: older than the "
                f"submission window (methodology v{self.version}{source})")


def submission_window(now: int) -> SubmissionWindow:
    """The submission window of the methodology in force at ``now`` (receipt time)."""
    m = methodology_in_force(now)
    return SubmissionWindow(m.submission_window_days, m.version, m.states_submission_window)


@lru_cache(maxsize=4096)
def month_of_day(day: int) -> int:
    """The month (``year * 12 + month - 1``) of a day number since 1970-01-01."""
    when = date(1970, 1, 1) + timedelta(days=day)
    return when.year * 12 + when.month - 1


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


def _positive_int(obj: dict[str, Any], key: str, where: str, *, required: bool = True
                  ) -> int | None:
    if key not in obj and not required:
        return None
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise MethodologyError("must be a positive integer", field=f"{where}.{key}")
    return value


def _decimal(obj: dict[str, Any], key: str, where: str) -> Fraction | None:
    if key not in obj:
        return None
    try:
        value = Fraction(obj[key]) if isinstance(obj[key], str) else None
    except (ValueError, ZeroDivisionError):
        value = None
    if value is None or value <= 0:
        raise MethodologyError("must be a positive decimal string", field=f"{where}.{key}")
    return value


def _behaviour(raw: dict[str, Any], grid: Fraction, index: int) -> Behaviour:
    """One behaviour. Version 1 kept its plausibility bound beside the caps; later
    versions group the bounds under ``plausibility`` and add monthly caps and ``dedup``."""
    where = f"behaviours[{index}]"
    try:
        code = raw["code"]
        if not (isinstance(code, str) and code.isascii() and 0 < len(code) <= 32):
            raise MethodologyError("code must be 1-32 ASCII characters", field=f"{where}.code")
        if raw["area"] not in AREAS:
            raise MethodologyError(f"area must be one of {sorted(AREAS)}", field=f"{where}.area")
        bounds = raw.get("plausibility", raw)
        bounds_where = f"{where}.plausibility" if "plausibility" in raw else where
        daily = _positive_int(raw, "daily_cap_grams", where)
        monthly = _positive_int(raw, "monthly_cap_grams", where, required=False)
        if monthly is not None and daily is not None and monthly < daily:
            raise MethodologyError("must be at least the daily cap",
                                   field=f"{where}.monthly_cap_grams")
        speed = _decimal(bounds, "max_speed_kmh", bounds_where)
        if speed is not None and raw["unit"] != "m":
            raise MethodologyError("a speed bound needs a distance unit ('m')",
                                   field=f"{bounds_where}.max_speed_kmh")
        dedup = raw.get("dedup")
        window = None
        if dedup is not None:
            if dedup.get("match") != "overlap":
                raise MethodologyError("the only match rule is 'overlap'", field=f"{where}.dedup")
            window = dedup.get("window_seconds")
            if not isinstance(window, int) or isinstance(window, bool) or window < 0:
                raise MethodologyError("a whole number of seconds, 0 or more",
                                       field=f"{where}.dedup.window_seconds")
        return Behaviour(
            code=code, title=raw["title"], area=raw["area"], unit=raw["unit"],
            units_per_factor_unit=_positive_int(raw, "units_per_factor_unit", where) or 1,
            baseline=_factor(raw["baseline"], grid, f"{where}.baseline"),
            project=_factor(raw["project"], grid, f"{where}.project"),
            daily_cap_grams=daily or 0,
            max_quantity_per_record=_positive_int(bounds, "max_quantity_per_record",
                                                  bounds_where) or 0,
            partner_kinds=tuple(raw["partner_kinds"]),
            monthly_cap_grams=monthly,
            max_speed_kmh=speed,
            max_records_per_hour=_positive_int(bounds, "max_records_per_hour", bounds_where,
                                               required=False),
            dedup_window_seconds=window,
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
            submission_window_days=_positive_int(doc, "submission_window_days", "methodology",
                                                 required=False) or DEFAULT_SUBMISSION_WINDOW_DAYS,
            states_submission_window="submission_window_days" in doc,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MethodologyError(f"malformed methodology: {exc}", field="methodology") from exc
    if len(methodology.behaviours) != len(behaviours):
        raise MethodologyError("behaviour codes must be unique", field="behaviours")
    if methodology.grams_per_point <= 0:
        raise MethodologyError("grams_per_point must be positive", field="points")
    return methodology


def methodology_text(version: int) -> str:
    """A published methodology file's text; :class:`NotFound` for a version never published
    (looked up among the published ones, so no name is made from what a caller sent)."""
    if version not in available_versions():
        raise NotFound(f"no methodology version {version}", field="methodology")
    return (resources.files("ledger") / "methodologies" / f"v{version}.json").read_text()


@cache
def load_methodology(version: int) -> Methodology:
    text = methodology_text(version)
    return parse_methodology(parse_json(text, field=f"methodology v{version}",
                                        max_bytes=MAX_METHODOLOGY_BYTES, unique_keys=True))


@cache
def available_versions() -> tuple[int, ...]:
    folder = resources.files("ledger") / "methodologies"
    return tuple(sorted(int(p.name[1:-5]) for p in folder.iterdir()
                        if p.name.startswith("v") and p.name.endswith(".json")))


@cache
def partner_kinds() -> tuple[str, ...]:
    """Every kind of partner some published methodology lets report a behaviour."""
    return tuple(sorted({kind for v in available_versions()
                         for b in load_methodology(v).behaviours.values()
                         for kind in b.partner_kinds}))


@cache
def local_day_offset() -> timedelta:
    """The offset from UTC of the local calendar day that caps, reports and the demo count
    in. Each version states it (``cap_day_utc_offset_hours``); reports span versions, so all
    published versions must agree, and a set that does not is refused here."""
    offsets = {load_methodology(v).day_offset for v in available_versions()}
    if len(offsets) != 1:
        raise MethodologyError(f"published versions disagree on the local day's offset: "
                               f"{sorted(offsets)}", field="cap_day_utc_offset_hours")
    return offsets.pop()


@cache
def _versions_by_start() -> tuple[tuple[int, Methodology], ...]:
    return tuple((m.effective_from_unix(), m)
                 for m in (load_methodology(v) for v in available_versions()))


def methodology_in_force(occurred_at: int) -> Methodology:
    """The latest version whose effective date is on or before the behaviour."""
    chosen = None
    for start, m in _versions_by_start():
        if start <= occurred_at:
            chosen = m
    if chosen is None:
        raise InvalidInput("no methodology was in force at that time", field="occurred_at")
    return chosen
