"""EIP-1559 pricing for anchors: the node's estimate, under the operator's ceiling, and the
+12.5% a replacement of the same nonce must pay before nodes accept it."""

from __future__ import annotations

from decimal import Decimal

from ledger.errors import FeeAboveCeiling


def gwei(wei: int) -> str:
    return f"{(Decimal(wei) / 10**9).normalize():f} gwei"


def bump(fee: int) -> int:
    """A fee at least 12.5% above ``fee`` (rounded up), what nodes ask of a replacement."""
    return fee + max(1, -(-fee // 8))


def price(base_fee: int, tip: int, *, ceiling: int | None,
          replacing: tuple[int, int] | None = None) -> tuple[int, int]:
    """``(maxFeePerGas, maxPriorityFeePerGas)`` for the next block's ``base_fee``.

    The usual EIP-1559 head-room (twice the base fee, plus the tip), never above
    ``ceiling``; a replacement of ``(max_fee, tip)`` pays at least 12.5% more on both."""
    max_fee, floor = 2 * base_fee + tip, 0
    if replacing is not None:
        floor = bump(replacing[0])
        tip = max(tip, bump(replacing[1]))
        max_fee = max(max_fee, floor, base_fee + tip)
    if ceiling is not None:
        if base_fee + tip > ceiling:
            raise FeeAboveCeiling(f"the next block's base fee {gwei(base_fee)} plus tip "
                                  f"{gwei(tip)} is above the ceiling of {gwei(ceiling)}; "
                                  "nothing new was sent", field="max_fee_gwei")
        if floor > ceiling:
            raise FeeAboveCeiling(f"replacing the stuck anchor needs a max fee of {gwei(floor)}, "
                                  f"above the ceiling of {gwei(ceiling)}; the first one "
                                  "stays in the pool", field="max_fee_gwei")
        max_fee = min(max_fee, ceiling)
    return max_fee, tip
