"""API keys: created by an admin, shown once, stored hashed."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from ems.api.auth import Admin, Services
from ems.domain.access import ApiKey, Role
from ems.errors import NotFound
from ems.services.admin import create_api_key

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"])


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: Role
    user_id: str | None = None


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    role: Role
    user_id: str | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, k: ApiKey) -> ApiKeyPublic:
        return cls(
            id=k.id, name=k.name, role=k.role, user_id=k.user_id, created_at=k.created_at, revoked_at=k.revoked_at
        )


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself. Shown only now; store it safely.")


@router.get("", summary="All API keys (never the keys themselves)")
async def list_keys(services: Services, _: Admin) -> list[ApiKeyPublic]:
    return [ApiKeyPublic.of(k) for k in await services.storage.api_keys.all()]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API key")
async def create_key(body: ApiKeyCreate, services: Services, _: Admin) -> ApiKeyCreated:
    key, record = await create_api_key(
        services.storage.api_keys, services.clock, body.name, body.role, user_id=body.user_id
    )
    return ApiKeyCreated(key=key, **ApiKeyPublic.of(record).model_dump())


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke an API key")
async def revoke_key(key_id: str, services: Services, _: Admin) -> None:
    if not await services.storage.api_keys.revoke(key_id, services.clock.now()):
        raise NotFound(f"no active API key {key_id!r}")
