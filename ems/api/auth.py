"""Bearer API keys with roles.

The bootstrap admin key comes from ``EMS_ADMIN_API_KEY``; further keys are created
through the API (``/api/v1/api-keys``) or ``ems apikey create`` and stored as SHA-256
hashes. A key is 32 random bytes (urlsafe base64), so a fast hash is enough: there is
nothing to brute-force. Comparison of the bootstrap key is constant-time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ems.api.services import ApiServices
from ems.domain.access import ROLE_RANK, Role
from ems.security import hash_api_key


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    user_id: str | None = None

    def at_least(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")


def get_services(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


Services = Annotated[ApiServices, Depends(get_services)]


async def authenticate(
    request: Request,
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(401, "missing API key: send Authorization: Bearer <key>")
    key = credentials.credentials
    admin_key: str | None = request.app.state.admin_api_key
    if admin_key is not None and hmac.compare_digest(key.encode(), admin_key.encode()):
        return Principal(key_id="bootstrap-admin", role=Role.ADMIN)
    stored = await services.storage.api_keys.by_hash(hash_api_key(key))
    if stored is None or stored.revoked_at is not None:
        raise HTTPException(401, "unknown or revoked API key")
    return Principal(key_id=stored.id, role=stored.role, user_id=stored.user_id)


def require(role: Role) -> object:
    async def _check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.at_least(role):
            raise HTTPException(403, f"this needs the {role.value} role; the key has {principal.role.value}")
        return principal

    return Depends(_check)


AnyUser = Annotated[Principal, require(Role.DRIVER)]
Analyst = Annotated[Principal, require(Role.ANALYST)]
Operator = Annotated[Principal, require(Role.OPERATOR)]
Admin = Annotated[Principal, require(Role.ADMIN)]
