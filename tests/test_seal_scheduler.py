"""The serving process's seal scheduler: a lease held elsewhere is reported with its holder
and time left at most once a minute, its state shows, and failures back off no longer than
the seal interval."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from api.composition import Container
from api.settings import Settings
from ledger import accounts
from ledger.campaign_anchoring import CampaignAnchorChore
from ledger.errors import DatabaseUnavailable
from ledger.green_credit_issue import StatementChore
from ledger.intake.service import submit_records
from ledger.sealing import SEALER_LEASE
from ledger.store.leases import acquire_lease, release_lease
from tests.conftest import a_record


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ledger_with_one_credit(tmp_path: Path) -> Container:
    """A ledger on the in-process chain with one credit waiting to be sealed."""
    c = Container(Settings(data_dir=tmp_path, chain="tester"))
    with c.db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="greenbike", name="Green Bike",
                                          kind="bike_share", signing_address=b"\x01" * 20)
        citizen = accounts.create_citizen(s)
        submit_records(s, partner=partner, records=[a_record(citizen.pseudonym)])
    return c


def test_a_lease_held_elsewhere_is_logged_with_its_holder_at_most_once_a_minute(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    c = ledger_with_one_credit(tmp_path)
    other = "another-host:4242:abc"  # a live sealer elsewhere (not a dead pid of this host)
    assert acquire_lease(c.db, SEALER_LEASE, other, seconds=600)
    clock = Clock()
    with c.anchor() as anchor:
        scheduler = c.seal_scheduler(anchor)
        scheduler._clock = clock
        with caplog.at_level(logging.INFO, logger="carbon_ledger.sealer"):
            assert scheduler.seal_once()  # taken elsewhere is not a failure
            clock.now += 30
            assert scheduler.seal_once()
            lines = [r.getMessage() for r in caplog.records]
            assert len(lines) == 1, lines
            assert other in lines[0] and "s more" in lines[0]
            assert scheduler.status()["state"] == "lease-taken"
            assert scheduler.status()["oldestUnanchoredSeconds"] is not None  # one waits
            clock.now += 31  # a minute after the first line
            scheduler.seal_once()
            assert len(caplog.records) == 2
        release_lease(c.db, SEALER_LEASE, other)
        assert scheduler.seal_once()
        status = scheduler.status()
        assert status["state"] == "idle" and status["lastAnchorAt"] is not None
        assert status["oldestUnanchoredSeconds"] is None


def test_backoff_never_waits_longer_than_the_seal_interval(tmp_path: Path) -> None:
    c = Container(Settings(data_dir=tmp_path, chain="tester", seal_interval=3))
    with c.anchor() as anchor:
        scheduler = c.seal_scheduler(anchor)
    waits = [scheduler.backoff.failed() for _ in range(8)]
    assert waits == [2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    scheduler.backoff.succeeded()
    assert scheduler.backoff.wait == 0.0


def test_the_database_going_away_while_the_lease_is_refused_does_not_end_the_sealer(
        tmp_path: Path) -> None:
    """Seen under a crash-stop of PostgreSQL: the lease was refused, and reading how long
    entries had waited then failed. That error escaped the sealer's thread and ended it."""
    c = Container(Settings(data_dir=tmp_path, chain="tester"))
    assert acquire_lease(c.db, SEALER_LEASE, "another-host:4242:abc", seconds=600)
    with c.anchor() as anchor:
        scheduler = c.seal_scheduler(anchor)

        def gone() -> None:
            raise DatabaseUnavailable("the database did not answer", field="database")

        scheduler.oldest_wait = gone  # type: ignore[method-assign]
        assert scheduler.seal_once()  # logged, not raised
        assert scheduler.state == "lease-taken"


def test_a_chore_whose_turn_another_worker_took_waits_for_a_later_seal(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Two workers: this one seals and releases the lease, the other takes it before this
    # one's chores (month statements, campaign anchors) ask for the anchoring key's turn.
    # That is no failure (CI's two-worker test found "a chore after sealing failed"), and
    # the chores are due again after the next seal, not a whole period later.
    c = ledger_with_one_credit(tmp_path)
    other = "another-host:4242:abc"
    with c.anchor() as anchor:
        scheduler = c.seal_scheduler(anchor)
        chores = scheduler.chores
        assert chores, "the serving process's chores"

        def the_other_worker_takes_the_turn() -> None:
            assert acquire_lease(c.db, SEALER_LEASE, other, seconds=600)

        scheduler.chores = (the_other_worker_takes_the_turn, *chores)
        with caplog.at_level(logging.INFO, logger="carbon_ledger.sealer"):
            assert scheduler.seal_once()
        said = [(r.levelno, r.getMessage()) for r in caplog.records]
        assert not [m for level, m in said if level >= logging.WARNING], said
        assert any("waits" in m for _, m in said), said
        turns = [chore for chore in chores if type(chore) in (StatementChore, CampaignAnchorChore)]
        assert len(turns) == 2 and all(chore.throttle.due() for chore in turns)
        release_lease(c.db, SEALER_LEASE, other)
