"""Request bodies read by the route itself, after authentication, never past a limit."""

from __future__ import annotations

from fastapi import Request

from ledger.errors import TooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The body, counted as it streams: :class:`TooLarge` (413) at ``limit`` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is over {limit} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)
