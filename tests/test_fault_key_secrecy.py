"""The anchoring key comes from the environment or an encrypted keystore and never shows:
not in a log line (web3's debug logs included), not in output, not in an error or its
traceback, not in a repr."""

from __future__ import annotations

import json
import logging
import traceback

import pytest
from eth_account import Account

from api.cli.main import main
from api.composition import Container
from api.settings import Settings
from chain.keys import load_signer
from ledger.errors import ChainError
from tests.conftest import needs_anvil
from tests.fault_support import Entries

pytestmark = needs_anvil()



def secret_of(account) -> str:  # type: ignore[no-untyped-def]
    return bytes(account.key).hex()


def test_the_key_never_reaches_logs_output_or_reprs(db, node, tmp_path, monkeypatch, capsys,
                                                    caplog) -> None:
    account = Account.create()
    secret = secret_of(account)
    monkeypatch.setenv("CARBON_LEDGER_ANCHOR_KEY", "0x" + secret)
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", db.url)
    Entries(db).add(2)
    caplog.set_level(logging.DEBUG)  # everything, web3's request and response logs too
    args = ["--rpc", node.url, "--data-dir", str(tmp_path / "cli")]
    assert main(["seal", *args]) == 0
    assert main(["chain", "check", *args]) == 0
    captured = capsys.readouterr()
    assert "eth_sendRawTransaction" in caplog.text, "debug logging was not captured"
    settings = Settings(data_dir=tmp_path / "cli", rpc_url=node.url)
    container = Container(settings)
    assert container.signer.address == account.address
    shown = [caplog.text, captured.out, captured.err, repr(settings), str(settings),
             settings.model_dump_json(), repr(container), repr(container.signer)]
    for text in shown:
        assert secret not in text.lower()


@pytest.mark.parametrize("bad", ["ab" * 31 + "zz", "ab" * 31, "0x" + "cd" * 33])
def test_a_malformed_key_is_refused_without_quoting_it(bad, tmp_path, capsys,
                                                       monkeypatch) -> None:
    with pytest.raises(ChainError) as refused:
        load_signer(private_key=bad, keystore=None, password=None, data_dir=tmp_path,
                    allow_dev_key=False)
    assert refused.value.field == "anchor_key"
    assert bad not in "".join(traceback.format_exception(refused.value))
    monkeypatch.setenv("CARBON_LEDGER_ANCHOR_KEY", bad)
    assert main(["seal", "--chain", "rpc", "--rpc", "http://127.0.0.1:9",
                 "--data-dir", str(tmp_path / "cli")]) == 5
    err = capsys.readouterr().err
    assert "anchor_key:" in err and bad not in err and "Traceback" not in err


def test_a_keystore_is_encrypted_and_a_wrong_password_is_not_echoed(tmp_path, capsys,
                                                                    monkeypatch) -> None:
    account = Account.create()
    path = tmp_path / "keystore.json"
    path.write_text(json.dumps(Account.encrypt(account.key, "right horse", kdf="pbkdf2",
                                               iterations=1000)))
    assert secret_of(account) not in path.read_text()
    signer = load_signer(private_key=None, keystore=path, password="right horse",
                         data_dir=tmp_path, allow_dev_key=False)
    assert signer.address == account.address
    monkeypatch.setenv("CARBON_LEDGER_KEYSTORE", str(path))
    monkeypatch.setenv("CARBON_LEDGER_KEYSTORE_PASSWORD", "battery staple")
    assert main(["seal", "--chain", "rpc", "--rpc", "http://127.0.0.1:9",
                 "--data-dir", str(tmp_path / "cli")]) == 5
    err = capsys.readouterr().err
    assert "keystore:" in err and "battery staple" not in err and "Traceback" not in err


def test_the_dev_key_is_kept_encrypted_with_its_password_readable_by_the_owner_only(
        tmp_path) -> None:
    signer = load_signer(private_key=None, keystore=None, password=None, data_dir=tmp_path,
                         allow_dev_key=True)
    assert secret_of(signer) not in (tmp_path / "anchor-keystore.json").read_text()
    assert (tmp_path / "anchor-keystore.password").stat().st_mode & 0o077 == 0
    again = load_signer(private_key=None, keystore=None, password=None, data_dir=tmp_path,
                        allow_dev_key=True)
    assert again.address == signer.address
