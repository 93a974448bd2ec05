"""The browser front end at ``/``: the pages built into ``web/dist`` (``node web/build.mjs``,
run by ``make setup``), served with the security headers.

Every page gets a Content-Security-Policy without inline scripts or styles (scripts and
styles only from this origin; connections to this origin and to JSON-RPC endpoints, which
the user chooses), no framing, no referrer, ``nosniff``. No CORS header is added to them:
the pages and the API share an origin (the API's own CORS, off by default, is
api.http.cors). ``python -m api.http.web DATA_DIR URL`` issues demo credentials and prints
where to sign in (``make demo``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response

DIST = Path(__file__).resolve().parents[2] / "web" / "dist"
PAGES = {"": "index", "verify": "verify", "citizen": "citizen", "auditor": "auditor",
         "partner": "partner", "public": "public", "campaigns": "campaigns"}
_ASSET = re.compile(r"[A-Za-z0-9_-]{1,64}\.(js|css)")
_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}


def content_security_policy(rpc_urls: list[str]) -> str:
    """Scripts and styles from this origin only; connections to this origin and to
    JSON-RPC endpoints: any https one, a loopback node, and the ones the ledger names."""
    connect = ["'self'", "https:", "http://127.0.0.1:*", "http://localhost:*"]
    for url in rpc_urls:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if parts.scheme == "http" and parts.netloc and origin not in connect:
            connect.append(origin)
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            f"connect-src {' '.join(connect)}; font-src 'self'; manifest-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")


def _security_headers(request: Request) -> dict[str, str]:
    csp = getattr(request.app.state, "web_csp", None)
    if csp is None:
        settings = request.app.state.ledger.container.settings
        csp = content_security_policy([u for u in (settings.public_rpc_url, settings.rpc_url) if u])
        request.app.state.web_csp = csp
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
            "Cross-Origin-Opener-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()"}


def _file(request: Request, path: Path, media_type: str, cache: str,
          extra: dict[str, str] | None = None) -> Response:
    headers = _security_headers(request)
    if not path.is_file():
        return PlainTextResponse("the web front end is not built: run `make setup` (or "
                                 "`node web/build.mjs`)", status_code=503, headers=headers)
    return FileResponse(path, media_type=media_type,
                        headers={**headers, "Cache-Control": cache, **(extra or {})})


router = APIRouter(include_in_schema=False)


@router.get("/assets/{name}")
def asset(name: str, request: Request) -> Response:
    match = _ASSET.fullmatch(name)
    if match is None:
        return PlainTextResponse("not found", status_code=404, headers=_security_headers(request))
    # chunk names carry their content hash; page entries and the stylesheet do not
    cache = "public, max-age=31536000, immutable" if name.startswith("chunk-") else "no-cache"
    return _file(request, DIST / "assets" / name, _TYPES[match.group(1)], cache)


@router.get("/verify-standalone.html")
def standalone_verifier(request: Request) -> Response:
    """The verify page as one file, to save and open from disk (its own CSP allows its
    inline script by hash; served here only as a download)."""
    return _file(request, DIST / "verify-standalone.html", "text/html; charset=utf-8", "no-cache",
                 {"Content-Disposition": 'attachment; filename="carbon-ledger-verify.html"'})


def _page(name: str) -> Any:
    def page(request: Request) -> Response:
        return _file(request, DIST / f"{name}.html", "text/html; charset=utf-8", "no-cache")
    return page


for _path, _name in PAGES.items():
    router.add_api_route(f"/{_path}", _page(_name), methods=["GET", "HEAD"], include_in_schema=False)


def install(app: FastAPI) -> None:
    """Serve the pages on ``app`` (after its /v1 routes)."""
    app.include_router(router)


def demo_sign_in(data_dir: Path, url: str) -> str:
    """Credentials to try the pages on a demo ledger: a token for the citizen with the most
    entries, an auditor key and a partner key (greenbike's, if there is one)."""
    from api.composition import container
    from ledger import views
    from ledger.credentials import issue_api_key, issue_citizen_token

    c = container(data_dir)
    with c.db.session(write_lock=True) as s:
        busiest = views.busiest_citizen(s)
        partner = views.first_partner(s, preferring="greenbike")
        if busiest is None or partner is None:
            return "no demo data yet: run `carbon-ledger demo` first"
        token = issue_citizen_token(s, citizen=busiest)
        auditor = issue_api_key(s, role="auditor")
        partner_key = issue_api_key(s, role="partner", partner=partner)
        who, code = busiest.pseudonym, partner.code
    return (f"\nOpen {url}/ in a browser (phones too: it is laid out for 390 px).\n"
            f"  citizen {who}:  {url}/citizen  token {token}\n"
            f"  auditor:  {url}/auditor  key {auditor}\n"
            f"  partner {code}:  {url}/partner  key {partner_key}\n"
            f"  verify (no sign-in):  {url}/verify  (pin the ledger: 'Use this server's descriptor')\n")


if __name__ == "__main__":  # python -m api.http.web DATA_DIR URL
    print(demo_sign_in(Path(sys.argv[1]), sys.argv[2].rstrip("/")))
