"""Tenants at the http boundary: which tenant a request is, and the session ids it may reach.

Every key belongs to a tenant (`aura_agent.api_keys`); the key guard puts the tenant on the
request scope. Controllers hand stores only *scoped* session ids, so a tenant can never read,
continue or delete another tenant's conversation, whatever id it sends, in every store.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Request
from litestar.types import Scope

from aura_agent.api_keys import DEFAULT_TENANT

TENANT_SCOPE_KEY: Final = "aura.tenant"


def tenant_of(scope: Scope) -> str:
    """The tenant the key guard authenticated; fails closed on a route outside the guard."""
    tenant = scope.get(TENANT_SCOPE_KEY)
    if not isinstance(tenant, str):
        raise RuntimeError("no tenant on the request: the route is not behind the key guard")
    return tenant


def provide_tenant(request: Request[Any, Any, Any]) -> str:
    """Litestar dependency `tenant`."""
    return tenant_of(request.scope)


def scoped_session_id(tenant: str, session_id: str) -> str:
    """The id a store keeps `session_id` of `tenant` under.

    `<tenant>/<id>`; the `default` tenant (the seed's single key) keeps the bare id, so the
    conversations of a single-key deployment survive the upgrade. Ids never contain `/`, so
    the namespaces cannot overlap.
    """
    return session_id if tenant == DEFAULT_TENANT else f"{tenant}/{session_id}"
