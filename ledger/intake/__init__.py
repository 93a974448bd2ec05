"""Intake: how partners' activity records enter the ledger, credited once.

- :mod:`ledger.intake.rules`: pure rules over plain data (no database): a record's
  checks and quantification on its own, then the decision over a :class:`Snapshot` of
  what the ledger knows (duplicates, the same behaviour from another partner, rates,
  caps).
- :mod:`ledger.store.intake`: the one SQL adapter: takes the locks, loads the snapshot,
  writes the decision (backend differences live only there).
- :mod:`ledger.intake.signed`: a partner's signed submission checked before the write
  lock (EIP-712 signature, nonce, deadline).
- :mod:`ledger.intake.service`: the one entry both faces call, in the signed mode (HTTP)
  or the operator's unsigned mode (the CLI's ``submit``).

Nothing is imported here, so the rules load without SQLAlchemy.
"""
