"""schemathesis against the app's own OpenAPI, over real HTTP: no 5xx, and responses
match the documented schema. Bounded in examples so it runs in CI."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from eth_account import Account
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.composition import Container
from api.http.app import create_app
from api.settings import Settings
from ledger import accounts
from ledger.credentials import issue_api_key, issue_citizen_token
from tests.api.test_live_http import live_server

_SCHEMA_DIR = tempfile.mkdtemp(prefix="openapi-")
schema = schemathesis.openapi.from_dict(
    create_app(Container(Settings(data_dir=Path(_SCHEMA_DIR), chain="tester"))).openapi())
CHECKS = [not_a_server_error, response_schema_conformance]
BOUNDED = settings(max_examples=15, deadline=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, dict[str, dict[str, str]]]]:  # type: ignore[no-untyped-def]
    container = Container(Settings(data_dir=tmp_path_factory.mktemp("fuzz"), chain="tester",
                                   rate_limit="1000000/minute"))
    with container.db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="greenbike", name="g", kind="bike_share",
                                          signing_address=bytes.fromhex(Account.create().address[2:]))
        citizen = accounts.create_citizen(s)
        accounts.upsert_reward(s, code="coffee", title="Coffee", points_cost=1, stock=5)
        creds = {"partners": issue_api_key(s, role="partner", partner=partner),
                 "citizens": issue_citizen_token(s, citizen=citizen),
                 "auditors": issue_api_key(s, role="auditor")}
    with live_server(container, run_sealer=False) as base:
        yield base, {tag: {"Authorization": f"Bearer {c}"} for tag, c in creds.items()}


@schema.parametrize()
@BOUNDED
def test_no_server_errors_and_responses_match_the_schema(case, server) -> None:  # type: ignore[no-untyped-def]
    base, headers = server
    tags = case.operation.definition.raw.get("tags", ["public"])
    case.call_and_validate(base_url=base, headers=headers.get(tags[0], {}), checks=CHECKS,
                           timeout=30)
