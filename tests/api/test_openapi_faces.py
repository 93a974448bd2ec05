"""The faces around the OpenAPI document: /docs and /redoc from our own files (no other
host named anywhere in their pages), CORS only for the listed origins and only on the
public and citizen routes, and the document's promises about errors and signing."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.composition import Container
from api.http.app import create_app
from api.settings import Settings
from tests.api.test_live_http import live_server

BANK = "https://bank.example"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("faces"), chain="tester",
                        cors_origins=[BANK])
    with TestClient(create_app(Container(settings), run_sealer=False)) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_only_from_this_server(client: TestClient, page: str) -> None:
    answer = client.get(page)
    assert answer.status_code == 200, answer.text
    html = answer.text
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]", html, re.I), html
    references = re.findall(r'(?:src|href|spec-url)="([^"]+)"', html)
    assert references and all(r.startswith("/") and not r.startswith("//") for r in references)
    for ref in references:
        assert client.get(ref).status_code == 200, ref
    csp = answer.headers["content-security-policy"]
    assert "http" not in csp and "connect-src 'self'" in csp
    if page == "/docs":  # no validator badge fetched from swagger.io
        assert "validatorUrl: null" in client.get("/apidocs/swagger-init.js").text


def test_only_the_named_files_are_served_under_apidocs(client: TestClient) -> None:
    assert client.get("/apidocs/index.html").status_code == 404
    assert client.get("/apidocs/..%2Fcitizen.html").status_code == 404


def test_a_listed_origin_may_call_the_public_and_citizen_routes(client: TestClient) -> None:
    preflight = client.options("/v1/me", headers={
        "Origin": BANK, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == BANK
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    redeem = client.options("/v1/redemptions", headers={
        "Origin": BANK, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
    assert redeem.status_code == 200
    info = client.get("/v1/info", headers={"Origin": BANK})
    assert info.headers["access-control-allow-origin"] == BANK
    assert "access-control-allow-credentials" not in info.headers  # bearer tokens, no cookies


def test_other_origins_and_other_routes_are_refused(client: TestClient) -> None:
    other = client.options("/v1/me", headers={"Origin": "https://evil.example",
                                              "Access-Control-Request-Method": "GET"})
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    for path, method in (("/v1/submissions", "POST"), ("/v1/batches", "GET"),
                         ("/v1/contribution", "GET")):
        preflight = client.options(path, headers={"Origin": BANK,
                                                  "Access-Control-Request-Method": method})
        assert "access-control-allow-origin" not in preflight.headers, path
        assert preflight.status_code == 405
    plain = client.get("/v1/batches", headers={"Origin": BANK})
    assert "access-control-allow-origin" not in plain.headers


def test_no_cors_header_by_default(tmp_path: Path) -> None:
    with TestClient(create_app(Container(Settings(data_dir=tmp_path, chain="tester")),
                               run_sealer=False)) as c:
        assert "access-control-allow-origin" not in c.get("/v1/info",
                                                          headers={"Origin": BANK}).headers
        assert c.options("/v1/me", headers={"Origin": BANK,
                                            "Access-Control-Request-Method": "GET"}).status_code == 405


def test_an_origin_is_only_an_origin() -> None:
    for bad in ("https://bank.example/", "https://bank.example/page", "bank.example", "*"):
        with pytest.raises(ValueError):
            Settings(cors_origins=[bad])
    assert Settings(cors_origins="https://a.example, http://localhost:3000").cors_origins == [
        "https://a.example", "http://localhost:3000"]


def test_every_error_is_a_documented_problem(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            secured = bool(operation.get("security"))
            assert {"429", "400", "413", "431"} <= set(answers), (method, path)
            assert ("401" in answers and "403" in answers) == secured, (method, path)
            for status, answer in answers.items():
                media = set(answer.get("content", {}))
                expected = {"application/problem+json"} if int(status) >= 400 else media
                # every answer has a body but 304's, which HTTP gives none
                assert media == expected and bool(media) == (status != "304"), (method, path, status)
            tags = set(operation["tags"])
            assert tags <= {"public", "citizens", "partners", "auditors"}
    submit = doc["paths"]["/v1/submissions"]["post"]
    headers = {p["name"]: p for p in submit["parameters"] if p["in"] == "header"}
    for name in ("X-Signature", "X-Nonce", "X-Deadline"):
        assert headers[name]["required"] and headers[name]["description"], name
    records = submit["requestBody"]["content"]["application/json"]["schema"]
    assert records["items"] == {"$ref": "#/components/schemas/ActivityRecord"}


def test_a_405_names_every_method_of_its_path(client: TestClient) -> None:
    for method, path, allowed in (("OPTIONS", "/v1/submissions", "GET, HEAD, POST"),
                                  ("PUT", "/v1/me", "GET, HEAD"),
                                  ("DELETE", "/v1/entries/" + "ab" * 32 + "/proof", "GET, HEAD")):
        answer = client.request(method, path)
        assert answer.status_code == 405 and answer.headers["allow"] == allowed, (path, answer.headers)
        assert answer.headers["content-type"] == "application/problem+json"


CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (Debian's `chromium`)")
def test_the_api_docs_draw_every_operation_offline_in_a_browser(tmp_path: Path) -> None:
    """What the HTML cannot show: the scripts themselves fetch nothing from another host
    (ReDoc's CDN logo is replaced when web/build.mjs copies it), and both draw the API."""
    container = Container(Settings(data_dir=tmp_path, chain="tester"))
    with live_server(container, run_sealer=False) as base:
        operations = sum(len(item) for item in httpx.get(f"{base}/openapi.json").json()["paths"].values())
        run = subprocess.run(["node", str(ROOT / "tests/api/api_docs_browser.mjs"), base],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    pages = json.loads(run.stdout.strip().splitlines()[-1])
    for page, seen in pages.items():
        assert seen["external"] == [] and seen["errors"] == [], (page, seen)
        assert seen["drawn"] >= operations, (page, seen, operations)
