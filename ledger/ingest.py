"""Moved to :mod:`ledger.intake` (rules, sql, signed, service). This module only keeps
the old names for importers that are not ours to edit yet (ledger/redemption.py's
citizen-lock constants, scripts/fuzz_json_entry_points.py, tests/api/test_security_answers.py);
import from ``ledger.intake`` and delete it once nothing imports it."""

from ledger.intake.rules import prepare_records
from ledger.intake.service import submit_records
from ledger.intake.sql import CITIZEN_LOCK_BUCKETS as _CITIZEN_LOCK_BUCKETS
from ledger.intake.sql import CITIZEN_LOCKS as _CITIZEN_LOCKS

__all__ = ["_CITIZEN_LOCKS", "_CITIZEN_LOCK_BUCKETS", "prepare_records", "submit_records"]
