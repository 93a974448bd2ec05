"""Moved to :mod:`ledger.intake.signed` (checking) and :mod:`ledger.intake.service`
(recording). This module only keeps the old names that files not ours to edit yet import
(scripts/fuzz_json_entry_points.py, tests/api/test_live_http.py, tests/web/test_browser.py);
import from ``ledger.intake`` and delete it once nothing imports it."""

from ledger.intake.signed import record_hash, record_hashes

__all__ = ["record_hash", "record_hashes"]
