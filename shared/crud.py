"""Data access for the handlers: every write is one transaction, rolled back whole on error."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.entra import EntraIdentity
from shared.models import Item, User
from shared.security import burn_password_check, hash_password, verify_password

logger = logging.getLogger(__name__)

# RFC 2606 domains: never a real mailbox. An application (client credentials) has no address;
# an Entra ID user whose address is already another account's gets its own, under the second.
APPLICATION_EMAIL_DOMAIN = "entra-application.example"
UNCLAIMED_EMAIL_DOMAIN = "entra-user.example"


class DuplicateEmail(Exception):
    """Another user already has this email."""


class EntraIdentityTaken(Exception):
    """Another account already signs in with this Entra ID identity."""


class EntraTenantMismatch(Exception):
    """The account of this object id belongs to another tenant."""


def _commit(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        # The unique email indexes are the only constraints a request can break here.
        raise DuplicateEmail from exc


# --- users -----------------------------------------------------------------------------------


def get_user(session: Session, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    """Whatever the case of either address (the database lowers both, as its index does)."""
    return session.scalars(select(User).where(func.lower(User.email) == func.lower(email))).first()


def create_user(
    session: Session,
    *,
    email: str,
    password: str | None,
    full_name: str | None = None,
    is_active: bool = True,
    is_superuser: bool = False,
) -> User:
    if get_user_by_email(session, email) is not None:
        raise DuplicateEmail
    user = User(
        email=email,
        hashed_password=hash_password(password) if password is not None else None,
        full_name=full_name,
        is_active=is_active,
        is_superuser=is_superuser,
    )
    session.add(user)
    _commit(session)
    return user


def _revoke_tokens(user: User) -> None:
    """Every access token issued so far stops matching the user's record."""
    user.token_version = (user.token_version or 0) + 1


def update_user(session: Session, user: User, changes: dict[str, Any]) -> User:
    changes = dict(changes)
    email = changes.get("email")
    if email is not None:
        other = get_user_by_email(session, email)
        if other is not None and other.id != user.id:
            raise DuplicateEmail
    if "password" in changes:
        user.hashed_password = hash_password(changes.pop("password"))
        _revoke_tokens(user)
    if changes.get("is_active") is False and user.is_active:
        _revoke_tokens(user)
    for name, value in changes.items():
        setattr(user, name, value)
    _commit(session)
    return user


def set_password(session: Session, user: User, password: str) -> None:
    user.hashed_password = hash_password(password)
    _revoke_tokens(user)
    session.commit()


def delete_user(session: Session, user: User) -> list[uuid.UUID]:
    """Delete the user and their items; returns the deleted items' ids (for cache eviction)."""
    item_ids = list(session.scalars(select(Item.id).where(Item.owner_id == user.id)))
    session.delete(user)
    session.commit()
    return item_ids


def list_users(session: Session, skip: int, limit: int) -> tuple[Sequence[User], int]:
    count = session.scalar(select(func.count()).select_from(User)) or 0
    users = session.scalars(
        select(User).order_by(User.created_at.desc(), User.id.desc()).offset(skip).limit(limit)
    ).all()
    return users, count


def password_matches(user: User | None, password: str) -> bool:
    """Whether ``password`` is ``user``'s; as slow for no user as for a wrong password."""
    if user is None:
        burn_password_check(password)
        return False
    return verify_password(password, user.hashed_password)


# --- Entra ID identities ---------------------------------------------------------------------


def _by_entra_oid(session: Session, oid: uuid.UUID) -> User | None:
    return session.scalars(select(User).where(User.entra_oid == oid)).first()


def entra_user(session: Session, identity: EntraIdentity) -> User:
    """The account of an Entra ID identity: found by ``oid`` (and tenant) only, else created.

    Never found by address: the address claims are mutable and unverified, so a first sign-in
    creates a new account even where a local account has that address (the new account then
    gets an unclaimed placeholder address, and the other account is neither changed nor shown).
    The app role decides ``is_superuser`` on every sign-in.
    """
    for _ in range(2):  # once more after losing a race with a concurrent first sign-in
        user = _by_entra_oid(session, identity.oid)
        if user is not None:
            if user.entra_tid not in (None, identity.tid):
                raise EntraTenantMismatch
            if user.entra_tid is None:  # provisioned before the tenant was recorded
                user.entra_tid = identity.tid
            if user.is_superuser != identity.is_admin:
                user.is_superuser = identity.is_admin
            if session.dirty:
                session.commit()
            return user
        try:
            return _provision(session, identity)
        except IntegrityError:
            session.rollback()
    raise EntraIdentityTaken


def _provision(session: Session, identity: EntraIdentity) -> User:
    email = identity.email or f"{identity.oid}@{APPLICATION_EMAIL_DOMAIN}"
    if get_user_by_email(session, email) is not None:
        logger.warning(
            "Entra ID identity %s: its address belongs to another account; provisioned with a "
            "placeholder address",
            identity.oid,
        )
        email = f"{identity.oid}@{UNCLAIMED_EMAIL_DOMAIN}"
    user = User(
        email=email,
        full_name=identity.name,
        entra_oid=identity.oid,
        entra_tid=identity.tid,
        is_superuser=identity.is_admin,
    )
    session.add(user)
    session.commit()
    return user


def link_entra(session: Session, user: User, oid: uuid.UUID, tid: uuid.UUID) -> User:
    """Attach an Entra ID identity to ``user``: an explicit act of the account or a superuser."""
    other = _by_entra_oid(session, oid)
    if other is not None and other.id != user.id:
        raise EntraIdentityTaken
    user.entra_oid, user.entra_tid = oid, tid
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise EntraIdentityTaken from exc
    return user


def unlink_entra(session: Session, user: User) -> User:
    user.entra_oid = user.entra_tid = None
    session.commit()
    return user


# --- items -----------------------------------------------------------------------------------


def get_item(session: Session, item_id: uuid.UUID) -> Item | None:
    return session.get(Item, item_id)


def list_items(
    session: Session, owner_id: uuid.UUID | None, skip: int, limit: int
) -> tuple[Sequence[Item], int]:
    """Newest first; all items when ``owner_id`` is None (superusers)."""
    count_query = select(func.count()).select_from(Item)
    items_query = select(Item).order_by(Item.created_at.desc(), Item.id.desc())
    if owner_id is not None:
        count_query = count_query.where(Item.owner_id == owner_id)
        items_query = items_query.where(Item.owner_id == owner_id)
    count = session.scalar(count_query) or 0
    items = session.scalars(items_query.offset(skip).limit(limit)).all()
    return items, count


def create_item(session: Session, owner_id: uuid.UUID, title: str, description: str | None) -> Item:
    item = Item(title=title, description=description, owner_id=owner_id)
    session.add(item)
    session.commit()
    return item


def update_item(session: Session, item: Item, changes: dict[str, Any]) -> Item:
    for name, value in changes.items():
        setattr(item, name, value)
    session.commit()
    return item


def delete_item(session: Session, item: Item) -> None:
    session.delete(item)
    session.commit()
