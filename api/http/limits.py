"""What one request may cost before a route sees it: the size of its head and body, and
a rate limit per caller.

The middlewares are pure ASGI (no per-request task, as BaseHTTPMiddleware makes). The
caller is decided once, here, from the one ``Authorization`` header: a request counts
against its principal (a partner, a citizen, an auditor's key) if its credential holds,
and against its client address otherwise, so neither rewriting the header nor sending
a wrong or made-up credential buys a fresh allowance. The routes' bearer dependency
reads the same decision (:func:`caller_of`).

The limit is kept in each process's memory: ``serve --workers N`` lets a caller make up
to N times the limit (each worker counts what it serves).
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.http import problems
from ledger.credentials import CredentialCache, Principal
from ledger.errors import DatabaseUnavailable, InvalidInput, Unauthenticated

#: Longer than any credential of ours (about 70 bytes) by far; longer is refused unread.
MAX_AUTHORIZATION = 4096
#: All header names and values of one request, in bytes, as the app sees them.
MAX_HEADERS = 32 * 1024
#: A request's head (request line and headers) as it arrives, for :class:`BoundedHttpTools`.
MAX_HEAD = 64 * 1024


# -- the caller ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Caller:
    """What a request's ``Authorization`` header stands for: a principal, nothing (no
    header), or a refusal (a malformed, unknown or revoked credential, or a database that
    cannot be asked: then a route that needs the caller answers 503)."""

    principal: Principal | None = None
    refused: Unauthenticated | DatabaseUnavailable | None = None

    def rate_key(self, scope: Scope) -> str:
        return self.principal.subject if self.principal is not None else client_key(scope)


ANONYMOUS = Caller()


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The header's last value, as ``dict(scope["headers"])`` would give, without the dict."""
    found = None
    for key, value in scope["headers"]:
        if key == name:
            found = value
    return found


def bearer_token(value: bytes) -> str:
    """The credential in an ``Authorization`` value: scheme ``Bearer`` (any case), then
    one or more spaces (RFC 9110 §11.4)."""
    scheme, _, token = value.decode("latin-1").strip(" ").partition(" ")
    token = token.lstrip(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send 'Authorization: Bearer <key or token>'", field="authorization")
    return token


def identify(scope: Scope) -> Caller:
    """Decide who is calling (the app's :class:`CredentialCache` reads the database only
    for a key id it has not seen within its ttl)."""
    value = _header(scope, b"authorization")
    if value is None:
        return ANONYMOUS
    app = scope["app"]
    cache: CredentialCache = app.state.credentials
    try:
        return Caller(cache.authenticate(bearer_token(value), app.state.ledger.container.db.session))
    except (Unauthenticated, DatabaseUnavailable) as refused:
        return Caller(refused=refused)


def caller_of(scope: Scope) -> Caller:
    """The caller :class:`RateLimit` decided for this request (decided now if it did not)."""
    state = scope.setdefault("state", {})
    caller = state.get("caller")
    if caller is None:
        caller = state["caller"] = identify(scope)
    return caller  # type: ignore[no-any-return]


def client_key(scope: Scope) -> str:
    """The client's address for counting: an IPv6 client by its /64, the block one host
    is usually given, so a host cannot count as many callers."""
    client = scope.get("client")
    host = client[0] if client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "addr:" + host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"addr:{address.ipv4_mapped}"
        return "addr:" + str(ipaddress.ip_network(f"{address}/64", strict=False))
    return f"addr:{address}"


def _head_refusal(scope: Scope) -> Any:
    """A problem for a head the app will not read: headers too large in all, an
    ``Authorization`` too long, or two of it. None if the head is fine."""
    total, authorizations = 0, 0
    for name, value in scope["headers"]:
        total += len(name) + len(value)
        if name == b"authorization":
            authorizations += 1
            if len(value) > MAX_AUTHORIZATION:
                return problems.problem(431, "header-too-large", "Request header too large",
                                        f"at most {MAX_AUTHORIZATION} bytes", "authorization")
    if total > MAX_HEADERS:
        return problems.problem(431, "header-too-large", "Request headers too large",
                                f"at most {MAX_HEADERS} bytes in all", "headers")
    if authorizations > 1:
        return problems.problem(400, "duplicate-header", "Duplicate header",
                                "send one Authorization header", "authorization")
    return None


# -- the rate limit -----------------------------------------------------------------------

class MovingWindow:
    """At most ``item.amount`` hits per key within any ``item.get_expiry()`` seconds: the
    `limits` library's moving window, kept as a deque of hit times per key (O(1) a hit;
    its in-memory storage inserts at the front of a list and starts a timer thread every
    10 ms, which costs a busy server more than the request).

    At most ``max_keys`` keys are kept, the least recently hit forgotten first; keys idle
    for a whole window are forgotten anyway. A forgotten key starts afresh, so only a
    caller who can make ``max_keys`` other callers count within a window gains by it."""

    def __init__(self, item: RateLimitItem, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 65_536) -> None:
        self.item, self._clock, self.max_keys = item, clock, max_keys
        self._window = float(item.get_expiry())
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._next_sweep = clock() + self._window

    def __len__(self) -> int:
        return len(self._hits)

    def hit(self, key: str) -> float | None:
        """Count a hit and return None, or refuse it: the seconds until one would pass."""
        now = self._clock()
        if now >= self._next_sweep:  # forget keys idle for a whole window
            self._hits = OrderedDict((k, h) for k, h in self._hits.items()
                                     if h and h[-1] > now - self._window)
            self._next_sweep = now + self._window
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        if len(hits) >= self.item.amount:
            return hits[0] + self._window - now
        hits.append(now)
        return None


class RateLimit:
    """Bounds every request's head (400/431 problems), and limits /v1 with a moving window
    per caller: per principal once its credential holds, per client address otherwise."""

    def __init__(self, app: ASGIApp, limit: str) -> None:
        self.app = app
        try:
            item = parse(limit)
        except ValueError as exc:
            raise InvalidInput(f"{limit!r} is not a rate limit like '600/minute'",
                               field="rate_limit") from exc
        self.window = MovingWindow(item)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _head_refusal(scope)
        if scope["path"].startswith("/v1/"):
            caller = ANONYMOUS if refusal is not None else caller_of(scope)
            wait = self.window.hit(caller.rate_key(scope))
            if wait is not None:
                refusal = problems.problem(429, "rate-limited", "Too many requests",
                                           f"at most {self.window.item}",
                                           headers={"Retry-After": str(max(1, int(wait) + 1))})
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


# -- the body -----------------------------------------------------------------------------

class _BodyTooLarge(Exception):
    """Raised to the app by a ``receive`` past the limit (never reaches a client)."""


class BodyLimit:
    """Every request's body at most ``limit`` bytes: a declared Content-Length over it is
    refused before anything is read; a body without one (chunked) is counted as the app
    reads it, and the read that passes the limit ends the request with 413 instead of
    whatever the app was about to answer. What the client still sends is never read
    (uvicorn drops a body once its response is complete)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    def _too_large(self) -> Any:
        return problems.problem(413, "too-large", "Request body too large",
                                f"at most {self.limit} bytes", "body")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._too_large()(scope, receive, send)
            return
        received, over, started = 0, False, False

        async def counted() -> Message:
            nonlocal received, over
            if over:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # what the app answers once the body was cut off: 413 below instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over or started:
                raise
        if over and not started:
            await self._too_large()(scope, receive, send)


# -- the protocol ----------------------------------------------------------------------------

class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on each request's head.

    httptools keeps a header of any length (a request with an 8 MB header was read whole)
    and uvicorn sets no bound of its own with it, so this counts the bytes that arrive
    while a head is being read and, past :data:`MAX_HEAD`, answers 431 and closes the
    connection (give it to uvicorn as ``http=``). The count is by read, so a head is
    refused within one read buffer of the bound. What the client still sends for
    :data:`LINGER` seconds is dropped unread before the close, so that the answer is not
    lost to a reset while the client is still sending."""

    LINGER = 1.0
    _head: int | None = 0  # bytes of the head being read; None while in a body
    _tail = b""  # the last bytes of the head so far: its end may straddle two reads
    _refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._head is not None:
            # One read may hold the end of the head and the start of the body: only the
            # bytes up to the blank line that ends the head count.
            end = (self._tail + data).find(b"\r\n\r\n")
            counted = len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._head += counted
            self._tail = (self._tail + data)[-3:]
            if self._head > MAX_HEAD:
                self._refuse_head()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head, self._tail = None, b""
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head, self._tail = 0, b""
        super().on_message_complete()

    def _refuse_head(self) -> None:
        self._refused = True
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            response = problems.problem(431, "header-too-large", "Request header too large",
                                        f"at most {MAX_HEAD} bytes of request line and headers",
                                        "headers")
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                 b"content-type: application/problem+json\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                                 % (len(response.body), response.body))
        self.loop.call_later(self.LINGER, self.transport.close)
