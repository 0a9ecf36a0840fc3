"""API keys and tenants: parsing INTERNAL_API_KEYS and API_KEYS_FILE, hashed keys, the match.

Errors must name the variable and the entry or line, and never repeat a key.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from aura_agent.api_keys import (
    DEFAULT_TENANT,
    ApiKeyError,
    load_api_keys,
    parse_key_file,
    parse_key_pairs,
)
from aura_agent.app import with_development_key
from aura_agent.config import ConfigError, load_settings

SECRET = "s3cret-key-that-must-never-appear-0001"


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_pairs_map_each_key_to_its_tenant() -> None:
    table = load_api_keys(
        internal_api_key="seed-key",
        internal_api_keys="acme:acme-key, globex:globex-key,,",
        api_keys_file=None,
    )

    assert table.tenant_for("seed-key") == DEFAULT_TENANT
    assert table.tenant_for("acme-key") == "acme"
    assert table.tenant_for("globex-key") == "globex"
    assert table.tenant_for("nobody") is None
    assert table.tenant_for("") is None
    assert len(table) == 3


def test_a_key_may_contain_colons_and_a_tenant_may_hold_several_keys() -> None:
    table = load_api_keys(
        internal_api_key=None, internal_api_keys="acme:old:key,acme:new-key", api_keys_file=None
    )

    assert table.tenant_for("old:key") == "acme"
    assert table.tenant_for("new-key") == "acme"
    assert len(table) == 2


def test_a_file_holds_plain_and_hashed_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(
        "# tenants of the staging deployment\n"
        "\n"
        "acme = acme-plain-key\n"
        f"  globex =   sha256:{_sha256(SECRET).upper()}   \n"
        f"initech=sha256:{_sha256('initech-key')}\n"
    )

    table = load_api_keys(internal_api_key=None, internal_api_keys=None, api_keys_file=str(path))

    assert table.tenant_for("acme-plain-key") == "acme"
    assert table.tenant_for(SECRET) == "globex"
    assert table.tenant_for("initech-key") == "initech"
    assert table.tenant_for(f"sha256:{_sha256(SECRET)}") is None, "a digest is not a key"
    # Only plain keys are handed to the log redactor; a hashed key is never known in plain.
    assert table.secrets == ("acme-plain-key",)


def test_every_key_is_compared_whichever_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    table = load_api_keys(
        internal_api_key=None,
        internal_api_keys=",".join(f"t{n}:key-{n}" for n in range(5)),
        api_keys_file=None,
    )
    compared: list[int] = []
    real_compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(len(a))
        return real_compare(a, b)

    monkeypatch.setattr("aura_agent.api_keys.hmac.compare_digest", counting)
    for presented in ("key-0", "key-4", "no-such-key", "x" * 10_000):
        compared.clear()
        table.tenant_for(presented)
        # All five, always, and always digests of one length: no early exit to time.
        assert compared == [32] * 5, presented


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ("acme", "invalid INTERNAL_API_KEYS: entry 1: expected name:key"),
        ("acme:k1,bad name:k2", "invalid INTERNAL_API_KEYS: entry 2: the tenant name must be"),
        ("acme:k1,:k2", "invalid INTERNAL_API_KEYS: entry 2: the tenant name must be"),
        ("a/b:k1", "invalid INTERNAL_API_KEYS: entry 1: the tenant name must be"),
        ("x" * 65 + ":k1", "invalid INTERNAL_API_KEYS: entry 1: the tenant name must be"),
        ("acme:", "invalid INTERNAL_API_KEYS: entry 1: the key is empty"),
    ],
)
def test_bad_pairs_name_the_entry(pairs: str, expected: str) -> None:
    with pytest.raises(ApiKeyError) as error:
        parse_key_pairs(pairs)
    assert str(error.value).startswith(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acme\n", "line 1: expected `name = key`"),
        ("# ok\nacme =\n", "line 2: expected `name = key`"),
        ("acme = sha256:abc\n", "line 1: a sha256: digest must be 64 hex digits"),
        (f"acme = sha256:{'g' * 64}\n", "line 1: a sha256: digest must be 64 hex digits"),
        ("white space = k\n", "line 1: the tenant name must be"),
    ],
)
def test_bad_file_lines_name_the_file_and_line(text: str, expected: str) -> None:
    with pytest.raises(ApiKeyError) as error:
        parse_key_file(text, "keys.conf")
    assert str(error.value).startswith(f"invalid API_KEYS_FILE (keys.conf): {expected}")


def test_errors_never_repeat_a_key(tmp_path: Path) -> None:
    messages = []
    for pairs in (SECRET, f"{SECRET}:", f"bad name:{SECRET}"):
        with pytest.raises(ApiKeyError) as error:
            parse_key_pairs(pairs)
        messages.append(str(error.value))
    for text in (f"{SECRET}\n", f"bad name = {SECRET}\n", f"acme = sha256:{SECRET}\n"):
        with pytest.raises(ApiKeyError) as error:
            parse_key_file(text, "keys")
        messages.append(str(error.value))
    path = tmp_path / "keys"
    path.write_text(f"acme = {SECRET}\n")
    with pytest.raises(ApiKeyError) as error:
        load_api_keys(
            internal_api_key=None, internal_api_keys=f"globex:{SECRET}", api_keys_file=str(path)
        )
    messages.append(str(error.value))

    assert messages[-1] == (
        "invalid API keys: INTERNAL_API_KEYS entry 1 and API_KEYS_FILE line 1 give the same key "
        "to two tenants (globex, acme)"
    )
    assert all(SECRET not in message for message in messages), messages


def test_one_key_for_two_tenants_is_refused_even_when_one_is_hashed(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"acme = sha256:{_sha256('shared-key')}\n")
    with pytest.raises(ApiKeyError, match="same key to two tenants"):
        load_api_keys(
            internal_api_key="shared-key", internal_api_keys=None, api_keys_file=str(path)
        )


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    with pytest.raises(ApiKeyError) as error:
        load_api_keys(internal_api_key=None, internal_api_keys=None, api_keys_file=str(missing))
    assert (
        str(error.value)
        == f"invalid API_KEYS_FILE: cannot read {missing} (No such file or directory)"
    )


# -- through the configuration ----------------------------------------------------------------


def test_configuration_errors_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^invalid INTERNAL_API_KEYS: entry 1"):
        load_settings({"INTERNAL_API_KEYS": "no-colon"}, env_file=None)
    with pytest.raises(ConfigError, match=r"^invalid API_KEYS_FILE: cannot read"):
        load_settings({"API_KEYS_FILE": str(tmp_path / "absent")}, env_file=None)
    empty = tmp_path / "empty"
    empty.write_text("# nobody yet\n")
    with pytest.raises(ConfigError, match="hold no key"):
        load_settings({"API_KEYS_FILE": str(empty)}, env_file=None)


def test_production_accepts_any_source_of_keys_and_requires_one(tmp_path: Path) -> None:
    base = {"AURA_ENV": "production", "OPENROUTER_API_KEY": "sk-or"}
    path = tmp_path / "keys"
    path.write_text(f"acme = sha256:{_sha256('k')}\n")

    with pytest.raises(ConfigError, match=r"INTERNAL_API_KEY .* is required"):
        load_settings(base, env_file=None)
    load_settings({**base, "INTERNAL_API_KEYS": "acme:k"}, env_file=None)
    load_settings({**base, "API_KEYS_FILE": str(path)}, env_file=None)


def test_a_development_key_is_made_only_when_no_key_is_configured() -> None:
    bare, generated = with_development_key(load_settings({}, env_file=None))
    assert generated
    assert bare.api_key_table().tenant_for(bare.internal_api_key or "") == DEFAULT_TENANT

    tenants = load_settings({"INTERNAL_API_KEYS": "acme:k"}, env_file=None)
    same, generated = with_development_key(tenants)
    assert not generated
    assert same.internal_api_key is None
