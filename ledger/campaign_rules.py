"""A campaign's rules as published data (#21): the file, its checks, and its hash.

A campaign (a "green-life season") is a versioned JSON file, like a methodology: its id
and version, titles in Chinese and English, sections, local start and end dates, the
behaviours it counts, bonus rules, partners' offers and at most one ranking. The hash the
contract pins is keccak256 of the file's RFC 8785 form, so whitespace and member order do
not matter but every value does; a correction is a new version, pinned before it applies.

Pure: parsing and arithmetic only, no database and no chain. Every refusal names the
field (``bonuses[1].multiplier``), so a publisher fixes the file without guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from typing import Any

import rfc8785

from ledger.errors import InvalidInput
from ledger.hashing import keccak
from ledger.json_input import parse_json
from ledger.methodology import available_versions, load_methodology, local_day_offset

MAX_CAMPAIGN_BYTES = 64 * 1024
#: Points and grams fit a signed 64-bit column; a rule beyond that is a typo.
MAX_AMOUNT = 2**62
#: A campaign id is short enough that ``PRIZE/<id>`` fits a leaf's 32-byte behaviour.
CAMPAIGN_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
METRICS = ("reduction_grams",)
TIE_BREAKS = ("earliest_reached", "account")
_TOP_LEVEL = {"id", "version", "title", "sections", "starts", "ends", "behaviours", "bonuses",
              "bonus_cap_points", "offers", "ranking"}


@dataclass(frozen=True)
class Titles:
    zh: str
    en: str


@dataclass(frozen=True)
class Section:
    code: str
    title: Titles
    behaviours: tuple[str, ...]


@dataclass(frozen=True)
class BonusRule:
    """Extra points for each credit of ``behaviour``: its points times ``multiplier``
    less the points themselves (so 1.5 adds half), or ``points`` flat; capped per citizen
    at ``cap_points`` over the campaign, besides the campaign's own cap."""

    behaviour: str
    multiplier: Fraction | None
    points: int | None
    cap_points: int | None

    def bonus_for(self, entry_points: int) -> int:
        if self.multiplier is not None:
            return int(entry_points * (self.multiplier - 1))  # floor: both are non-negative
        assert self.points is not None
        return self.points


@dataclass(frozen=True)
class Offer:
    """A partner's reward, redeemable for points from ``valid_from`` to ``valid_until``
    (local dates, both included), inside the campaign's dates."""

    code: str
    partner: str
    title: Titles
    points_cost: int
    stock: int
    valid_from: date
    valid_until: date


@dataclass(frozen=True)
class Prize:
    rank_from: int
    rank_to: int
    points: int


@dataclass(frozen=True)
class RankingRules:
    """Who ranks highest by ``metric`` over entries that occurred from ``starts`` to
    ``ends`` (local dates, included) of ``behaviours``; at least ``minimum`` to be
    ranked; ties broken by ``tie_break`` and then by account commitment."""

    metric: str
    behaviours: tuple[str, ...]
    starts: date
    ends: date
    minimum: int
    tie_break: str
    prizes: tuple[Prize, ...]

    def prize_for(self, rank: int) -> int:
        return next((p.points for p in self.prizes if p.rank_from <= rank <= p.rank_to), 0)

    @property
    def starts_at(self) -> int:
        return local_midnight(self.starts)

    @property
    def ends_at(self) -> int:
        """The first second after the period (exclusive)."""
        return local_midnight(self.ends + timedelta(days=1))


@dataclass(frozen=True)
class Campaign:
    id: str
    version: int
    title: Titles
    sections: tuple[Section, ...]
    starts: date
    ends: date
    behaviours: tuple[str, ...]
    bonuses: tuple[BonusRule, ...]
    bonus_cap_points: int
    offers: tuple[Offer, ...]
    ranking: RankingRules | None
    canonical: bytes  # the RFC 8785 form of the file: what is hashed and stored

    @property
    def key(self) -> bytes:
        return campaign_key(self.id, self.version)

    @property
    def rules_hash(self) -> bytes:
        return keccak(self.canonical)

    @property
    def starts_at(self) -> int:
        return local_midnight(self.starts)

    @property
    def ends_at(self) -> int:
        """The first second after the last day (exclusive)."""
        return local_midnight(self.ends + timedelta(days=1))

    def bonus_rule(self, behaviour: str) -> BonusRule | None:
        return next((b for b in self.bonuses if b.behaviour == behaviour), None)

    def offer(self, code: str) -> Offer:
        for o in self.offers:
            if o.code == code:
                return o
        raise InvalidInput(f"campaign {self.id!r} has no offer {code!r}", field="offer")

    def reward_code(self, offer: Offer) -> str:
        """The offer's code in the reward catalogue: campaign id, version and offer."""
        return f"{self.id}.v{self.version}.{offer.code}"


def campaign_key(campaign_id: str, version: int) -> bytes:
    """The contract's key for a campaign version (the ``campaign`` of its functions)."""
    return keccak(b"carbon-ledger/campaign\x00" + campaign_id.encode() + b"\x00"
                  + str(version).encode())


def local_midnight(day: date) -> int:
    """Unix seconds of a local date's start (the methodology's local day)."""
    offset = local_day_offset()
    return int((datetime.combine(day, time(0), tzinfo=UTC) - offset).timestamp())


def parse_campaign(data: bytes | str) -> Campaign:
    """A campaign file, checked; refuses anything malformed, naming the field."""
    doc = parse_json(data, field="campaign", max_bytes=MAX_CAMPAIGN_BYTES, unique_keys=True)
    if not isinstance(doc, dict):
        raise InvalidInput("a campaign file is a JSON object", field="campaign")
    _only(doc, _TOP_LEVEL, "")
    cid = _str(doc, "id", "")
    if not CAMPAIGN_ID.fullmatch(cid):
        raise InvalidInput("1-24 of a-z 0-9 '-', starting with a letter or digit", field="id")
    version = _int(doc, "version", "", low=1, high=2**31)
    starts, ends = _date(doc, "starts", ""), _date(doc, "ends", "")
    if ends < starts:
        raise InvalidInput("ends before it starts", field="ends")
    if (ends - starts).days > 366:
        raise InvalidInput("a campaign lasts at most a year", field="ends")
    known = _known_behaviours()
    behaviours = _codes(doc, "behaviours", "", known)
    sections = tuple(_section(s, f"sections[{i}]", set(behaviours))
                     for i, s in enumerate(_list(doc, "sections", "", at_least=1)))
    _unique([s.code for s in sections], "sections")
    bonuses = tuple(_bonus(b, f"bonuses[{i}]", set(behaviours))
                    for i, b in enumerate(_list(doc, "bonuses", "", at_least=0)))
    _unique([b.behaviour for b in bonuses], "bonuses")
    cap = _int(doc, "bonus_cap_points", "", low=0, high=MAX_AMOUNT)
    offers = tuple(_offer(o, f"offers[{i}]", starts, ends)
                   for i, o in enumerate(_list(doc, "offers", "", at_least=0)))
    _unique([o.code for o in offers], "offers")
    ranking = None
    if doc.get("ranking") is not None:
        ranking = _ranking(doc["ranking"], "ranking", set(behaviours), starts, ends)
    return Campaign(cid, version, _titles(doc, "title", ""), sections, starts, ends,
                    behaviours, bonuses, cap, offers, ranking, rfc8785.dumps(doc))


# -- the parts ------------------------------------------------------------------------------

def _section(raw: Any, where: str, eligible: set[str]) -> Section:
    obj = _obj(raw, where)
    _only(obj, {"code", "title", "behaviours"}, where)
    code = _code(obj, "code", where)
    behaviours = _codes(obj, "behaviours", where, eligible, at_least=0)
    return Section(code, _titles(obj, "title", where), behaviours)


def _bonus(raw: Any, where: str, eligible: set[str]) -> BonusRule:
    obj = _obj(raw, where)
    _only(obj, {"behaviour", "multiplier", "points", "cap_points"}, where)
    behaviour = _str(obj, "behaviour", where)
    if behaviour not in eligible:
        raise InvalidInput("not one of the campaign's behaviours", field=f"{where}.behaviour")
    if ("multiplier" in obj) == ("points" in obj):
        raise InvalidInput("give a multiplier or fixed points, not both or neither",
                           field=f"{where}.multiplier")
    multiplier = points = None
    if "multiplier" in obj:
        text = obj["multiplier"]
        if not isinstance(text, str) or not re.fullmatch(r"[1-9][0-9]?(\.[0-9]{1,2})?", text):
            raise InvalidInput("a decimal string such as \"1.5\" (at most 2 decimals)",
                               field=f"{where}.multiplier")
        multiplier = Fraction(text)
        if not 1 < multiplier <= 10:
            raise InvalidInput("above 1 and at most 10", field=f"{where}.multiplier")
    else:
        points = _int(obj, "points", where, low=1, high=MAX_AMOUNT)
    cap = _int(obj, "cap_points", where, low=1, high=MAX_AMOUNT) if "cap_points" in obj else None
    return BonusRule(behaviour, multiplier, points, cap)


def _offer(raw: Any, where: str, starts: date, ends: date) -> Offer:
    obj = _obj(raw, where)
    _only(obj, {"code", "partner", "title", "points_cost", "stock", "valid_from",
                "valid_until"}, where)
    valid_from, valid_until = _date(obj, "valid_from", where), _date(obj, "valid_until", where)
    if valid_from < starts or valid_until > ends or valid_until < valid_from:
        raise InvalidInput("an offer is valid within the campaign's dates, and ends after "
                           "it starts", field=f"{where}.valid_until")
    partner = _str(obj, "partner", where)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", partner):
        raise InvalidInput("a partner's code", field=f"{where}.partner")
    return Offer(_code(obj, "code", where), partner, _titles(obj, "title", where),
                 _int(obj, "points_cost", where, low=1, high=MAX_AMOUNT),
                 _int(obj, "stock", where, low=0, high=MAX_AMOUNT), valid_from, valid_until)


def _ranking(raw: Any, where: str, eligible: set[str], starts: date, ends: date) -> RankingRules:
    obj = _obj(raw, where)
    _only(obj, {"metric", "behaviours", "starts", "ends", "minimum", "tie_break", "prizes"}, where)
    metric = _str(obj, "metric", where)
    if metric not in METRICS:
        raise InvalidInput(f"one of {', '.join(METRICS)}", field=f"{where}.metric")
    tie_break = _str(obj, "tie_break", where)
    if tie_break not in TIE_BREAKS:
        raise InvalidInput(f"one of {', '.join(TIE_BREAKS)}", field=f"{where}.tie_break")
    r_starts, r_ends = _date(obj, "starts", where), _date(obj, "ends", where)
    if r_starts < starts or r_ends > ends or r_ends < r_starts:
        raise InvalidInput("the ranking's period lies within the campaign's dates",
                           field=f"{where}.ends")
    prizes = []
    last = 0
    for i, p in enumerate(_list(obj, "prizes", where, at_least=0)):
        at = f"{where}.prizes[{i}]"
        po = _obj(p, at)
        _only(po, {"ranks", "points"}, at)
        ranks = po.get("ranks")
        if (not isinstance(ranks, list) or len(ranks) != 2
                or not all(type(r) is int for r in ranks) or not last < ranks[0] <= ranks[1] <= 10_000):
            raise InvalidInput("[first, last] ranks, ascending and after the previous prize's",
                               field=f"{at}.ranks")
        last = ranks[1]
        prizes.append(Prize(ranks[0], ranks[1], _int(po, "points", at, low=1, high=MAX_AMOUNT)))
    return RankingRules(metric, _codes(obj, "behaviours", where, eligible), r_starts, r_ends,
                        _int(obj, "minimum", where, low=0, high=MAX_AMOUNT), tie_break,
                        tuple(prizes))


# -- small checks ---------------------------------------------------------------------------

def _known_behaviours() -> set[str]:
    return {code for v in available_versions() for code in load_methodology(v).behaviours}


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _obj(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput("expected an object", field=where)
    return raw


def _only(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise InvalidInput("not a member of a campaign file here", field=_path(where, key))


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput("a non-empty string is required", field=_path(where, key))
    return value


def _code(obj: dict[str, Any], key: str, where: str) -> str:
    value = _str(obj, key, where)
    if not _CODE.fullmatch(value):
        raise InvalidInput("1-32 of a-z 0-9 '_' '-'", field=_path(where, key))
    return value


def _int(obj: dict[str, Any], key: str, where: str, *, low: int, high: int) -> int:
    value = obj.get(key)
    if type(value) is not int or not low <= value <= high:
        raise InvalidInput(f"an integer from {low} to {high}", field=_path(where, key))
    return value


def _date(obj: dict[str, Any], key: str, where: str) -> date:
    value = obj.get(key)
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("a local date, YYYY-MM-DD", field=_path(where, key)) from None


def _list(obj: dict[str, Any], key: str, where: str, *, at_least: int) -> list[Any]:
    value = obj.get(key, [] if at_least == 0 else None)
    if not isinstance(value, list) or not at_least <= len(value) <= 64:
        raise InvalidInput(f"a list of {at_least} to 64 items", field=_path(where, key))
    return value


def _codes(obj: dict[str, Any], key: str, where: str, allowed: set[str], *,
           at_least: int = 1) -> tuple[str, ...]:
    items = _list(obj, key, where, at_least=at_least)
    for i, item in enumerate(items):
        if item not in allowed:
            raise InvalidInput(f"{item!r} is not a behaviour allowed here",
                               field=f"{_path(where, key)}[{i}]")
    _unique(items, _path(where, key))
    return tuple(items)


def _titles(obj: dict[str, Any], key: str, where: str) -> Titles:
    at = _path(where, key)
    t = _obj(obj.get(key), at)
    _only(t, {"zh-CN", "en"}, at)
    values = []
    for lang in ("zh-CN", "en"):
        text = t.get(lang)
        if not isinstance(text, str) or not text.strip() or len(text) > 200 or not text.isprintable():
            raise InvalidInput("1 to 200 printable characters", field=f"{at}.{lang}")
        values.append(text)
    return Titles(*values)


def _unique(items: list[Any], field: str) -> None:
    if len(set(items)) != len(items):
        raise InvalidInput("listed twice", field=field)


def campaign_to_json(c: Campaign) -> dict[str, Any]:
    """The file as published (its canonical form, parsed back), with its key and hash."""
    import json

    return {"key": "0x" + c.key.hex(), "rulesHash": "0x" + c.rules_hash.hex(),
            "startsAt": c.starts_at, "endsAt": c.ends_at, "rules": json.loads(c.canonical)}
