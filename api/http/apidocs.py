"""The API's interactive documentation at ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc),
from this server's own copies: swagger-ui-dist and redoc's standalone bundle, pinned in
package.json and copied into ``web/dist/apidocs`` by ``node web/build.mjs``. They work
offline and where CDNs are blocked, and their Content-Security-Policy lets them reach
nothing but this origin."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from api.http.web import DIST

ASSETS = DIST / "apidocs"
#: name → media type: the only files served under /apidocs/
FILES = {"swagger-ui.css": "text/css; charset=utf-8",
         "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
         "swagger-init.js": "text/javascript; charset=utf-8",
         "redoc.standalone.js": "text/javascript; charset=utf-8",
         "favicon-32x32.png": "image/png"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def _page(title: str, head: str, body: str) -> HTMLResponse:
    if not (ASSETS / "swagger-ui-bundle.js").is_file():
        return HTMLResponse("the API docs' assets are not built: run `make setup` (or "
                            "`node web/build.mjs`)", status_code=503, headers=HEADERS)
    return HTMLResponse(f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="/apidocs/favicon-32x32.png">
{head}
</head>
<body>
{body}
</body>
</html>
""", headers={**HEADERS, "Cache-Control": "no-cache"})


router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return _page("carbon-ledger API · Swagger UI",
                 '<link rel="stylesheet" href="/apidocs/swagger-ui.css">',
                 '<div id="swagger-ui"></div>\n'
                 '<script src="/apidocs/swagger-ui-bundle.js"></script>\n'
                 '<script src="/apidocs/swagger-init.js"></script>')


@router.get("/redoc")
def redoc() -> HTMLResponse:
    return _page("carbon-ledger API · ReDoc", "",
                 '<redoc spec-url="/openapi.json"></redoc>\n'
                 '<script src="/apidocs/redoc.standalone.js"></script>')


@router.get("/apidocs/{name}")
def asset(name: str) -> Response:
    media_type = FILES.get(name)
    path = ASSETS / name
    if media_type is None or not path.is_file():
        return PlainTextResponse("not found", status_code=404, headers=HEADERS)
    return FileResponse(path, media_type=media_type,
                        headers={**HEADERS, "Cache-Control": "public, max-age=3600"})


def install(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets (the app is made with its own docs off)."""
    app.include_router(router)
