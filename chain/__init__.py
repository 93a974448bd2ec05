"""Everything that talks to an EVM: compile, deploy, anchor, read.

Implements the anchoring protocol that :mod:`ledger.anchoring` defines.
"""
