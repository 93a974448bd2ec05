"""Fees are EIP-1559 estimates under a ceiling (``CARBON_LEDGER_MAX_FEE_GWEI``): a network
dearer than that is refused with a clear error naming the setting, nothing is sent or
broken, and sealing goes through once the fee falls. The key's other transactions (month
statements, campaign publications, ranking roots) are held to the same ceiling. Real anvil,
its base fee set with ``anvil_setNextBlockBaseFeePerGas``.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from eth_account import Account
from sqlalchemy import select

from api.cli.main import main
from api.composition import Container
from api.settings import Settings
from chain.fees import price
from ledger.campaign_anchoring import publish
from ledger.errors import FeeAboveCeiling
from ledger.statement_builder import build_due_statements
from ledger.store.models import Batch
from tests.campaign_support import season, text
from tests.conftest import needs_anvil
from tests.fault_support import Entries, anvil_call, anvil_sealer, assert_ledger_matches_chain
from tests.statement_ledger import Entry, add_entries, at

pytestmark = needs_anvil()

GWEI = 10**9



def statuses(db) -> list[tuple[str, bytes | None]]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return [(b.status, b.tx_hash) for b in s.scalars(select(Batch).order_by(Batch.id))]


def test_a_base_fee_above_the_ceiling_is_refused_and_sealing_goes_through_when_it_falls(
        db, node) -> None:
    entries, key = Entries(db), Account.create()
    sealer = anvil_sealer(db, node.url, key, max_fee_wei=50 * GWEI)
    entries.add(3)
    anvil_call(node.url, "anvil_setNextBlockBaseFeePerGas", [hex(80 * GWEI)])
    sent_before = sealer.anchor.nonces()
    with pytest.raises(FeeAboveCeiling) as refused:
        sealer.seal()
    assert refused.value.field == "max_fee_gwei"
    assert "base fee 80 gwei" in str(refused.value) and "ceiling of 50 gwei" in str(refused.value)
    assert statuses(db) == [("sealed", None)]  # sealed, nothing signed, recorded or sent
    assert sealer.anchor.nonces() == sent_before
    assert anvil_call(node.url, "txpool_status") == {"pending": "0x0", "queued": "0x0"}

    anvil_call(node.url, "anvil_setNextBlockBaseFeePerGas", [hex(2 * GWEI)])
    [batch] = sealer.seal()
    assert batch.id == 1 and batch.status == "anchored"
    assert_ledger_matches_chain(db, node.url, other_txs=1)


def test_the_cli_names_the_setting_and_exits_5_without_a_traceback(
        db, node, tmp_path, monkeypatch, capsys) -> None:
    Entries(db).add(1)
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", db.url)
    monkeypatch.setenv("CARBON_LEDGER_MAX_FEE_GWEI", "0.5")  # anvil starts at 1 gwei
    code = main(["seal", "--rpc", node.url, "--data-dir", str(tmp_path / "cli")])
    err = capsys.readouterr().err
    assert code == 5
    assert "(fee-above-ceiling): max_fee_gwei:" in err and "Traceback" not in err


def test_a_replacement_that_would_cross_the_ceiling_leaves_the_first_in_the_pool(
        db, node) -> None:
    entries, key = Entries(db), Account.create()
    anvil_sealer(db, node.url, key)
    entries.add(2)
    anvil_call(node.url, "evm_setAutomine", [False])
    first_max_fee: list[int] = []

    def note(step: str, _batch_id: int) -> None:
        if step == "broadcast" and not first_max_fee:
            content = anvil_call(node.url, "txpool_content")["pending"]
            [txs] = content.values()
            first_max_fee.append(int(next(iter(txs.values()))["maxFeePerGas"], 16))

    # a ceiling that admits the first price but not the 12.5% more a replacement needs
    base = int(anvil_call(node.url, "eth_getBlockByNumber", ["pending", False])["baseFeePerGas"], 16)
    tip = int(anvil_call(node.url, "eth_maxPriorityFeePerGas"), 16)
    ceiling = price(base, tip, ceiling=None)[0] + 1
    sealer = anvil_sealer(db, node.url, key, max_fee_wei=ceiling, replace_after=0.5,
                          on_step=note)
    with pytest.raises(FeeAboveCeiling, match="the first one stays in the pool"):
        sealer.seal()
    [(status, recorded)] = statuses(db)
    assert status == "submitted" and recorded is not None
    anvil_call(node.url, "evm_mine")  # the first is mined after all: it counts
    anvil_call(node.url, "evm_setAutomine", [True])
    [batch] = anvil_sealer(db, node.url, key, max_fee_wei=ceiling).seal()
    assert batch.tx_hash == recorded
    assert_ledger_matches_chain(db, node.url, other_txs=1)


@pytest.mark.parametrize(("base", "tip", "ceiling", "replacing", "expected"), [
    (10, 2, None, None, (22, 2)),  # twice the base fee, plus the tip
    (10, 2, 15, None, (15, 2)),  # capped at the ceiling while base + tip fits under it
    (10, 2, None, (22, 2), (25, 3)),  # a replacement: +12.5% on both, rounded up
    (100, 2, None, (22, 2), (202, 3)),  # ... or what the new base fee needs, if more
])
def test_fees_are_priced_from_the_next_base_fee_under_the_ceiling(base, tip, ceiling,
                                                                   replacing, expected) -> None:
    assert price(base, tip, ceiling=ceiling, replacing=replacing) == expected


def test_a_price_above_the_ceiling_is_refused_naming_the_setting() -> None:
    with pytest.raises(FeeAboveCeiling) as refused:
        price(100 * GWEI, GWEI, ceiling=50 * GWEI)
    assert refused.value.field == "max_fee_gwei"


# -- the key's other transactions: statements and campaigns --------------------------------

def served_container(db, node, tmp_path, gwei: int) -> Container:  # type: ignore[no-untyped-def]
    """The composition root on the anvil at ``node``, its ceiling ``gwei``."""
    return Container(Settings(data_dir=tmp_path / "served", chain="anvil", rpc_url=node.url,
                              database_url=db.url, max_fee_gwei=Decimal(gwei)))


def test_a_statement_is_held_to_the_ceiling_that_batch_anchors_are(
        db, node, tmp_path, make_citizen) -> None:
    alice = make_citizen()
    add_entries(db, [Entry(alice, at(2026, 10, 5), grams=400, points=4)])
    c = served_container(db, node, tmp_path, 50)
    with c.anchor() as anchor:
        [batch] = c.sealer(anchor).seal()
        chain = c.statement_chain(anchor)
        anvil_call(node.url, "anvil_setNextBlockBaseFeePerGas", [hex(80 * GWEI)])
        with pytest.raises(FeeAboveCeiling) as refused:
            build_due_statements(c.db, chain, now=at(2026, 12, 3))
        assert refused.value.field == "max_fee_gwei" and "ceiling of 50 gwei" in str(refused.value)
        assert chain.latest_statement()[0] == 0
        assert anvil_call(node.url, "txpool_status") == {"pending": "0x0", "queued": "0x0"}

        anvil_call(node.url, "anvil_setNextBlockBaseFeePerGas", [hex(2 * GWEI)])
        build_due_statements(c.db, chain, now=at(2026, 12, 3))
        assert chain.latest_statement()[0] == 202611  # October and November, now due


def test_campaign_publications_and_ranking_roots_are_held_to_the_ceiling(
        db, node, tmp_path, make_partner) -> None:
    make_partner("appliance-shop", "appliance_retailer")
    make_partner("nev-maker", "nev_maker")
    c = served_container(db, node, tmp_path, 50)
    with c.anchor() as anchor:
        chain = c.campaign_chain(anchor)
        anvil_call(node.url, "anvil_setNextBlockBaseFeePerGas", [hex(80 * GWEI)])
        with pytest.raises(FeeAboveCeiling) as refused:
            publish(c.db, chain, text(season()))
        assert refused.value.field == "max_fee_gwei"
        assert anvil_call(node.url, "txpool_status") == {"pending": "0x0", "queued": "0x0"}

        anvil_call(node.url, "anvil_setNextBlockBaseFeePerGas", [hex(2 * GWEI)])
        campaign = publish(c.db, chain, text(season()))
        assert chain.campaign_rules(campaign.key) == campaign.rules_hash
        anvil_call(node.url, "anvil_setNextBlockBaseFeePerGas", [hex(80 * GWEI)])
        with pytest.raises(FeeAboveCeiling):  # a ranking root is priced by the same part
            chain.prepare_ranking(key=campaign.key, root=b"\2" * 32, leaf_count=1,
                                  content_hash=b"\3" * 32)
