"""Everything that talks to an EVM: compile, deploy, anchor, read.

Implements the anchoring protocol that :mod:`ledger.anchoring` defines.

Two libraries under web3 and eth-tester (py_ecc, py-evm) raise the interpreter's
recursion limit when first imported (py_ecc to 100,000). Deep recursion in C code, such
as a JSON parser given a deeply nested document, then overflows the C stack and kills the
process instead of raising. So they are imported here, before anything else in this
package, and the limit is put back.
"""

import sys as _sys

_LIMIT = _sys.getrecursionlimit()
import eth  # noqa: E402, F401 - py-evm, eth-tester's EVM: raises the limit
import py_ecc  # noqa: E402, F401 - web3 imports it: raises the limit

_sys.setrecursionlimit(_LIMIT)
