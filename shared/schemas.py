"""Request and response models of the /api/v1 contract; they also feed the OpenAPI document.

Names and field order follow ``contracts/api-v1.openapi.json``. Stricter than the template where
the behaviour notes say so: NUL characters are rejected in every string (PostgreSQL text cannot
hold them), and ``null`` for a field whose column cannot be null is a 422, not a database error.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

MAX_INT32 = 2**31 - 1


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "String should not contain NUL characters")
    return value


# Length constraints sit on ``str`` itself, before the validator, so that pydantic reports them
# as FastAPI does ("String should have at least 8 characters").
NoNul = AfterValidator(_no_nul)
Text = Annotated[str, NoNul]
Email = Annotated[EmailStr, Field(max_length=255)]
Password = Annotated[str, Field(min_length=8, max_length=128), NoNul]
FullName = Annotated[str, Field(max_length=255), NoNul]
Title = Annotated[str, Field(min_length=1, max_length=255), NoNul]
Description = Annotated[str, Field(max_length=255), NoNul]


class PartialUpdate(BaseModel):
    """A PATCH/PUT body: only the fields sent change; ``null`` only where the column allows it."""

    not_nullable: ClassVar[tuple[str, ...]] = ()

    @field_validator("*", mode="before")
    @classmethod
    def _reject_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for fields present in the body, so omitting a field stays allowed.
        if value is None and info.field_name in cls.not_nullable:
            raise PydanticCustomError("null_not_allowed", "Field may be omitted but not null")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


# --- users -----------------------------------------------------------------------------------


class UserCreate(BaseModel):
    email: Email
    is_active: bool = True
    is_superuser: bool = False
    full_name: FullName | None = None
    password: Password


class UserRegister(BaseModel):
    email: Email
    password: Password
    full_name: FullName | None = None


class UserUpdate(PartialUpdate):
    not_nullable = ("email", "is_active", "is_superuser", "password")

    email: Email | None = None
    is_active: bool | None = None
    is_superuser: bool | None = None
    full_name: FullName | None = None
    password: Password | None = None


class UserUpdateMe(PartialUpdate):
    not_nullable = ("email",)

    full_name: FullName | None = None
    email: Email | None = None


class UpdatePassword(BaseModel):
    current_password: Password
    new_password: Password


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    email: Email
    is_active: bool = True
    is_superuser: bool = False
    full_name: FullName | None = None
    id: uuid.UUID
    created_at: datetime | None = None


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


PUBLIC_USER_FIELDS = tuple(UserPublic.model_fields)


class PublicUserFields(Protocol):
    """What ``user_public`` reads: an ORM row or the cached record of a user."""

    @property
    def email(self) -> str: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def is_superuser(self) -> bool: ...
    @property
    def full_name(self) -> str | None: ...
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def created_at(self) -> datetime | None: ...


def user_public(user: PublicUserFields) -> UserPublic:
    """A stored user as the contract shows it, without validating it again.

    What is stored was validated on the way in; a row that predates a rule (an address from an
    old, unchecked sign-in claim, say) must still be readable, never a 500 on every read.
    """
    return UserPublic.model_construct(**{name: getattr(user, name) for name in PUBLIC_USER_FIELDS})


@functools.cache
def email_adapter() -> TypeAdapter[str]:
    """The API's rules for an address, for values that do not arrive in a request body."""
    return TypeAdapter(Email)


class EntraLinkMe(BaseModel):
    """Link the caller's account to the Entra ID identity of ``entra_token``; the current
    password proves it is the account's owner asking, not just a holder of its access token."""

    entra_token: Annotated[str, Field(min_length=1, max_length=16_384), NoNul]
    current_password: Password


class EntraLink(BaseModel):
    """An Entra ID identity: object id within its tenant."""

    oid: uuid.UUID
    tid: uuid.UUID


class PrivateUserCreate(BaseModel):
    email: Email
    password: Text
    full_name: Text
    is_verified: bool = False


# --- items -----------------------------------------------------------------------------------


class ItemCreate(BaseModel):
    title: Title
    description: Description | None = None


class ItemUpdate(PartialUpdate):
    not_nullable = ("title",)

    title: Title | None = None
    description: Description | None = None


class ItemPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    title: Title
    description: Description | None = None
    id: uuid.UUID
    owner_id: uuid.UUID
    created_at: datetime | None = None


class ItemsPublic(BaseModel):
    data: list[ItemPublic]
    count: int


class Page(BaseModel):
    """``skip``/``limit`` query parameters, bounded (the template accepts any integer)."""

    skip: int = Field(default=0, ge=0, le=MAX_INT32)
    limit: int = Field(default=100, ge=1, le=1000)


# --- login and utils -------------------------------------------------------------------------


class LoginForm(BaseModel):
    """OAuth2 password-flow form (``username`` is the email)."""

    model_config = ConfigDict(title="Body_login-login_access_token")

    grant_type: Annotated[str, Field(pattern="^password$")] | None = None
    username: Text
    password: Annotated[Text, Field(json_schema_extra={"format": "password"})]
    scope: Text = ""
    client_id: Text | None = None
    client_secret: Text | None = Field(default=None, json_schema_extra={"format": "password"})


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type)


class NewPassword(BaseModel):
    token: Text
    new_password: Password


class Message(BaseModel):
    message: str


class TestEmailQuery(BaseModel):
    email_to: Email


# --- documentation-only shapes ---------------------------------------------------------------


class ValidationError(BaseModel):
    loc: list[str | int] = Field(title="Location")
    msg: str = Field(title="Message")
    type: str = Field(title="Error Type")
    input: Any = Field(default=None, title="Input")
    ctx: dict[str, Any] = Field(default_factory=dict, title="Context")


class HTTPValidationError(BaseModel):
    detail: list[ValidationError] = Field(default_factory=list)


class ErrorMessage(BaseModel):
    detail: str


class Health(BaseModel):
    status: str
    version: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]
    checked_at: str | None = None
    details: dict[str, dict[str, Any]] | None = None


class CacheCleared(BaseModel):
    removed: int


class CacheReconnected(BaseModel):
    mode: str
    redis_configured: bool
    connected: bool


class CacheInvalidated(BaseModel):
    pattern: str
    removed: int


def normalize_email(address: str) -> str:
    """The stored form of an address for look-ups: the domain lower-cased, as on input."""
    local, at, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}" if at else address.strip()
