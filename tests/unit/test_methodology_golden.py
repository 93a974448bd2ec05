"""Worked examples computed by hand from the cited factors match the engine to the gram,
for every published version (each has its own golden file)."""

import json
from pathlib import Path

import pytest

from ledger.methodology import AREAS, available_versions, load_methodology

DATA = Path(__file__).parents[1] / "data"
METHODOLOGIES = Path(__file__).parents[2] / "ledger" / "methodologies"


def golden(version: int) -> list[dict]:
    return json.loads((DATA / f"methodology_v{version}_golden.json").read_text())


CASES = [(v, case) for v in available_versions() for case in golden(v)]


@pytest.mark.parametrize(("version", "case"), CASES,
                         ids=[f"v{v}-{c['behaviour']}-{c['quantity']}" for v, c in CASES])
def test_hand_computed_reduction_matches_engine(version: int, case: dict) -> None:
    methodology = load_methodology(version)
    behaviour = methodology.behaviour(case["behaviour"])
    grams = behaviour.reduction_grams(case["quantity"])
    assert grams == case["expected_grams"], case["working"]
    if "expected_points" in case:
        assert methodology.points(grams) == case["expected_points"], case["working"]
    if "expected_capped_grams" in case:
        remaining = behaviour.daily_cap_grams - case.get("credited_earlier_today_grams", 0)
        assert min(grams, max(0, remaining)) == case["expected_capped_grams"], case["working"]


@pytest.mark.parametrize("version", available_versions())
def test_every_behaviour_has_a_worked_example(version: int) -> None:
    covered = {c["behaviour"] for c in golden(version)}
    assert covered == set(load_methodology(version).behaviours)


@pytest.mark.parametrize("version", available_versions())
def test_every_factor_names_its_source(version: int) -> None:
    doc = json.loads((METHODOLOGIES / f"v{version}.json").read_text())
    for b in doc["behaviours"]:
        for side in ("baseline", "project"):
            assert b[side]["source"].strip(), f"{b['code']}.{side} has no source"
    grid = doc["grid_emission_factor"]
    assert grid["source"].strip() and grid["name"].strip() and grid["data_year"] >= 2020


def test_the_latest_version_covers_daily_life() -> None:
    """The seed's areas (clothing, food, housing, transport, travel, shopping), with at
    least 15 behaviours, every one with a monthly cap."""
    latest = load_methodology(max(available_versions()))
    assert len(latest.behaviours) >= 15
    assert {b.area for b in latest.behaviours.values()} == AREAS
    assert all(b.monthly_cap_grams for b in latest.behaviours.values())


def test_the_grid_factor_of_version_1_is_2022s() -> None:
    doc = json.loads((METHODOLOGIES / "v1.json").read_text())
    assert doc["grid_emission_factor"]["data_year"] == 2022
