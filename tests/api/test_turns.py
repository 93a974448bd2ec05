"""The proof route's admission: a few bundles made per turn of the event loop, the rest
in arrival order in later turns, so that a turn stays short (api.http.turns)."""

from __future__ import annotations

import asyncio

import pytest

from api.http.turns import PerTurn


async def _admitted(gate: PerTurn, callers: int, cancel: frozenset[int] = frozenset()
                    ) -> list[tuple[int, int]]:
    """(caller, turn) in the order callers went on; all start in one turn."""
    turn = 0
    done: list[tuple[int, int]] = []

    def tick() -> None:  # counts the loop's turns
        nonlocal turn
        turn += 1
        if len(done) < callers - len(cancel):
            asyncio.get_running_loop().call_soon(tick)

    async def caller(k: int) -> None:
        await gate.admit()
        done.append((k, turn))

    asyncio.get_running_loop().call_soon(tick)
    tasks = [asyncio.ensure_future(caller(k)) for k in range(callers)]
    await asyncio.sleep(0)  # every caller asks in the same turn
    for k in cancel:
        tasks[k].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return done


def test_at_most_per_turn_callers_go_on_in_a_turn_first_come_first_served() -> None:
    done = asyncio.run(_admitted(PerTurn(2), 7))
    assert [k for k, _ in done] == list(range(7))
    turns = [t for _, t in done]
    assert all(turns.count(t) <= 2 for t in turns)
    assert len(set(turns)) == 4  # 2 + 2 + 2 + 1


def test_a_caller_that_went_away_takes_no_place() -> None:
    done = asyncio.run(_admitted(PerTurn(1), 5, cancel={2, 3}))
    assert [k for k, _ in done] == [0, 1, 4]
    assert len({t for _, t in done}) == 3


def test_per_turn_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PerTurn(0)
