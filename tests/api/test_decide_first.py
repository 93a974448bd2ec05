"""A serving process's checks wait while it decides in the write lock, never longer."""

from __future__ import annotations

import threading
import time

from api.http.gate import DecideFirst
from ledger.intake.rules import PREPARE_CHUNK, prepare_records
from tests.conftest import a_record


def paused_in_thread(gate: DecideFirst) -> tuple[threading.Thread, list[float]]:
    took: list[float] = []

    def check() -> None:
        started = time.monotonic()
        gate.pause()
        took.append(time.monotonic() - started)
    thread = threading.Thread(target=check)
    thread.start()
    return thread, took


def test_a_check_goes_on_at_once_when_nothing_is_decided() -> None:
    gate = DecideFirst()
    thread, took = paused_in_thread(gate)
    thread.join(timeout=1)
    assert took and took[0] < 0.05


def test_a_check_waits_while_the_process_decides_and_goes_on_after() -> None:
    gate = DecideFirst()
    with gate.deciding() as begin:
        thread, took = paused_in_thread(gate)  # waiting for the lock: no one is paused
        thread.join(timeout=1)
        assert took and took[0] < 0.05
        begin()  # the lock is held from here
        thread, took = paused_in_thread(gate)
        time.sleep(0.2)
        assert thread.is_alive() and not took
    thread.join(timeout=1)
    assert took and 0.2 <= took[0] < 0.5
    thread, took = paused_in_thread(gate)  # and nothing is left counted as deciding
    thread.join(timeout=1)
    assert took[0] < 0.05


def test_a_decision_that_fails_lets_the_checks_go_on() -> None:
    gate = DecideFirst()
    try:
        with gate.deciding() as begin:
            begin()
            raise RuntimeError("the write failed")
    except RuntimeError:
        pass
    thread, took = paused_in_thread(gate)
    thread.join(timeout=1)
    assert took and took[0] < 0.05


def test_no_check_waits_longer_than_the_bound() -> None:
    gate = DecideFirst()
    gate.MAX_PAUSE = 0.1
    with gate.deciding() as begin:
        begin()
        thread, took = paused_in_thread(gate)
        thread.join(timeout=1)
    assert took and 0.1 <= took[0] < 0.3


def test_preparing_records_pauses_before_each_chunk() -> None:
    calls: list[int] = []
    records = [a_record("c_someone", record_id=f"r{i}") for i in range(2 * PREPARE_CHUNK + 1)]
    prepared = prepare_records(records, kind="bike_share", address=b"\x11" * 20,
                               now=int(time.time()), pause=lambda: calls.append(1))
    assert len(calls) == 3
    assert [i for i, _, _ in prepared.good] == list(range(len(records)))
