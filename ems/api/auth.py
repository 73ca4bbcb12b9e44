"""Bearer API keys with roles.

The bootstrap admin key comes from ``EMS_ADMIN_API_KEY``; further keys are created
through the API (``/api/v1/api-keys``) or ``ems apikey create`` and stored as SHA-256
hashes. A key is 32 random bytes (urlsafe base64), so a fast hash is enough: there is
nothing to brute-force. Comparison of the bootstrap key is constant-time.

A key may expire (``expires_at``); an expired or revoked key is refused like an unknown one.
Wrong keys are throttled per source address and per key (``ems.throttle``): after a few
failures the source gets ``429`` with ``Retry-After`` (before any key is looked up) and every
failure is logged as a security event. A request without any key is not counted (it guessed
nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ems.api.services import ApiServices
from ems.domain.access import ROLE_RANK, Role
from ems.security import hash_api_key
from ems.services.operators import BOOTSTRAP_KEY_ID, check_api_key
from ems.throttle import AuthThrottle, retry_after_header, security_event


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


class Throttled(HTTPException):
    """429 with ``Retry-After``: too many failed authentications from this source or for this key."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(
            429,
            "too many failed authentications; retry later",
            headers={"Retry-After": retry_after_header(retry_after_s)},
        )


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def authenticate(
    request: Request,
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(401, "missing API key: send Authorization: Bearer <key>")
    key = credentials.credentials
    key_hash = hash_api_key(key)
    source = client_address(request)
    keys = (f"ip:{source}", f"key:{key_hash[:16]}")
    throttle: AuthThrottle = request.app.state.auth_throttle
    now_s = services.clock.monotonic()
    wait = throttle.retry_after(keys, now_s)
    if wait is not None:
        security_event("api_auth_throttled", source=source, retry_after_s=round(wait, 1))
        raise Throttled(wait)
    admin_key: str | None = request.app.state.admin_api_key
    checked = await check_api_key(services.storage.api_keys, services.clock, key, admin_key=admin_key)
    if checked.role is None or checked.key_id is None:
        lockout = throttle.failed(keys, now_s)
        security_event("api_auth_failed", source=source, reason=checked.refused, lockout_s=round(lockout, 1))
        raise HTTPException(401, "unknown, revoked or expired API key")
    if checked.key_id == BOOTSTRAP_KEY_ID:
        return Principal(key_id=checked.key_id, role=checked.role)
    throttle.succeeded(keys[1])
    return Principal(key_id=checked.key_id, role=checked.role, user_id=checked.user_id)


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
