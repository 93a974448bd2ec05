"""Everything that talks to an EVM: compile, deploy, anchor, read.

Implements the anchoring protocol that :mod:`ledger.anchoring` defines.

py-evm (eth-tester's EVM) raises the interpreter's recursion limit when first imported;
it is imported here and the limit set back (see :mod:`ledger`).
"""

import sys as _sys

import eth as _py_evm  # noqa: F401 - imported for its side effect, undone below

from ledger import RECURSION_LIMIT as _LIMIT

_sys.setrecursionlimit(_LIMIT)
