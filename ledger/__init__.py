"""The domain of the carbon ledger: records, methodology, accounts, Merkle batches, proofs.

Plain Python over plain data. Nothing here imports FastAPI or web3; what the domain
needs from a chain is the small protocol in :mod:`ledger.anchoring`.

The interpreter's recursion limit is ours: py_ecc (imported by eth-account, which signs
here) raises it to 100,000 when first imported, and py-evm (eth-tester's EVM) to 12,288.
Recursion in C code, such as a JSON parser given a deeply nested document, then
overflows the C stack and kills the process instead of raising. So py_ecc is imported
here, first, and the limit set back to :data:`RECURSION_LIMIT`; :mod:`chain` does the
same after importing py-evm.
"""

import sys as _sys

import py_ecc as _py_ecc  # noqa: F401 - imported for its side effect, undone below

#: CPython's default, and all this project's code needs.
RECURSION_LIMIT = 1000
_sys.setrecursionlimit(RECURSION_LIMIT)
