"""The callers' API keys: which tenant each key belongs to, and the constant-time match.

Keys come from three places, all optional and combinable:

* `INTERNAL_API_KEY`: the seed's single key, tenant `default`;
* `INTERNAL_API_KEYS`: comma-separated `name:key` pairs;
* `API_KEYS_FILE`: lines of `name = key` or `name = sha256:<64 hex digits>`, `#` comments.

Every key is kept only as its SHA-256 digest, so a file can hold digests instead of secrets and
every comparison has the same length. A tenant may hold several keys (rotation); one key may
not belong to two tenants. Error messages name the variable and the entry or line, never a key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_TENANT: Final = "default"
TENANT_NAME_RULE: Final = "1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"
_TENANT_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HASHED: Final = re.compile(r"sha256:([0-9A-Fa-f]{64})")
_FILE_LINE_RULE: Final = "expected `name = key` or `name = sha256:<64 hex digits>`"


class ApiKeyError(ValueError):
    """The key configuration is invalid; the message names the variable and entry, not the key."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One accepted key: its tenant, its SHA-256 digest, and where it was configured."""

    tenant: str
    digest: bytes
    source: str
    secret: str | None = None
    """The plain key when it was configured in plain text (for log redaction only)."""


def digest_of(key: str) -> bytes:
    """The SHA-256 digest a presented or configured key is compared by."""
    return hashlib.sha256(key.encode()).digest()


class ApiKeyTable:
    """Every accepted key. `tenant_for` compares against all of them, always, in constant time.

    Comparing digests (fixed length) with `hmac.compare_digest` and never stopping at a match
    means the time taken does not depend on the presented key, nor on which key it matches.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The plain keys, for the log redactor."""
        return tuple(key.secret for key in self._keys if key.secret)

    def tenant_for(self, presented: str) -> str | None:
        """The tenant whose key `presented` is, or None."""
        digest = digest_of(presented)
        tenant: str | None = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest):
                tenant = key.tenant
        return tenant


def _checked_name(name: str, where: str) -> str:
    if _TENANT_NAME.fullmatch(name) is None:
        raise ApiKeyError(f"{where}: the tenant name must be {TENANT_NAME_RULE}")
    return name


def _plain_key(tenant: str, key: str, source: str, where: str) -> ApiKey:
    if not key:
        raise ApiKeyError(f"{where}: the key is empty")
    return ApiKey(tenant=tenant, digest=digest_of(key), source=source, secret=key)


def parse_key_pairs(text: str) -> list[ApiKey]:
    """Parse `INTERNAL_API_KEYS`: `name:key,name:key` (blank entries are ignored)."""
    keys: list[ApiKey] = []
    entries = [entry.strip() for entry in text.split(",")]
    for number, entry in enumerate((e for e in entries if e), start=1):
        where = f"invalid INTERNAL_API_KEYS: entry {number}"
        name, sep, key = entry.partition(":")
        if not sep:
            raise ApiKeyError(f"{where}: expected name:key")
        source = f"INTERNAL_API_KEYS entry {number}"
        keys.append(_plain_key(_checked_name(name.strip(), where), key.strip(), source, where))
    return keys


def parse_key_file(text: str, label: str) -> list[ApiKey]:
    """Parse the lines of an `API_KEYS_FILE`; `label` names the file in errors."""
    keys: list[ApiKey] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"invalid API_KEYS_FILE ({label}): line {number}"
        name, sep, value = line.partition("=")
        value = value.strip()
        if not sep or not value:
            raise ApiKeyError(f"{where}: {_FILE_LINE_RULE}")
        tenant = _checked_name(name.strip(), where)
        source = f"API_KEYS_FILE line {number}"
        if value.startswith("sha256:"):
            hashed = _HASHED.fullmatch(value)
            if hashed is None:
                raise ApiKeyError(f"{where}: a sha256: digest must be 64 hex digits")
            digest = bytes.fromhex(hashed.group(1))
            keys.append(ApiKey(tenant=tenant, digest=digest, source=source))
        else:
            keys.append(_plain_key(tenant, value, source, where))
    return keys


def read_key_file(path: str) -> list[ApiKey]:
    """Read and parse an `API_KEYS_FILE`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ApiKeyError(f"invalid API_KEYS_FILE: cannot read {path} ({reason})") from None
    return parse_key_file(text, path)


def load_api_keys(
    *, internal_api_key: str | None, internal_api_keys: str | None, api_keys_file: str | None
) -> ApiKeyTable:
    """Every configured key, checked: one key never belongs to two tenants."""
    keys: list[ApiKey] = []
    if internal_api_key:
        keys.append(
            ApiKey(
                tenant=DEFAULT_TENANT,
                digest=digest_of(internal_api_key),
                source="INTERNAL_API_KEY",
                secret=internal_api_key,
            )
        )
    if internal_api_keys:
        keys += parse_key_pairs(internal_api_keys)
    if api_keys_file:
        keys += read_key_file(api_keys_file)
    owners: dict[bytes, ApiKey] = {}
    for key in keys:
        first = owners.setdefault(key.digest, key)
        if first.tenant != key.tenant:
            raise ApiKeyError(
                f"invalid API keys: {first.source} and {key.source} give the same key to two "
                f"tenants ({first.tenant}, {key.tenant})"
            )
    return ApiKeyTable(tuple(keys))
