"""Worked examples computed by hand from the cited factors match the engine to the gram."""

import json
from pathlib import Path

import pytest

from ledger.methodology import load_methodology

GOLDEN = json.loads((Path(__file__).parent / "data" / "methodology_v1_golden.json").read_text())


@pytest.mark.parametrize("case", GOLDEN, ids=lambda c: f"{c['behaviour']}-{c['quantity']}")
def test_hand_computed_reduction_matches_engine(case: dict) -> None:
    behaviour = load_methodology(1).behaviour(case["behaviour"])
    grams = behaviour.reduction_grams(case["quantity"])
    assert grams == case["expected_grams"], case["working"]
    if "expected_capped_grams" in case:
        remaining = behaviour.daily_cap_grams - case.get("credited_earlier_today_grams", 0)
        assert min(grams, max(0, remaining)) == case["expected_capped_grams"], case["working"]


def test_every_behaviour_has_a_worked_example() -> None:
    covered = {c["behaviour"] for c in GOLDEN}
    assert covered == set(load_methodology(1).behaviours)


def test_every_factor_names_its_source() -> None:
    doc = json.loads((Path(__file__).parents[1] / "ledger/methodologies/v1.json").read_text())
    for b in doc["behaviours"]:
        for side in ("baseline", "project"):
            assert b[side]["source"].strip(), f"{b['code']}.{side} has no source"
    assert doc["grid_emission_factor"]["data_year"] == 2022
