"""Media types and the fast JSON response the routes share."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

NDJSON = "application/x-ndjson"
JSON = "application/json"


def json_response(content: Any) -> Response:
    """JSON from orjson, for the hot routes (FastAPI's own path validates through Pydantic)."""
    return Response(orjson.dumps(content), media_type=JSON)
