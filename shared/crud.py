"""Data access for the handlers: every write is one transaction, rolled back whole on error."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.models import Item, User
from shared.security import burn_password_check, hash_password, verify_password


class DuplicateEmail(Exception):
    """Another user already has this email."""


def _commit(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        # The unique email index is the only constraint a request can break.
        raise DuplicateEmail from exc


# --- users -----------------------------------------------------------------------------------


def get_user(session: Session, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).first()


def create_user(
    session: Session,
    *,
    email: str,
    password: str | None,
    full_name: str | None = None,
    is_active: bool = True,
    is_superuser: bool = False,
    entra_oid: uuid.UUID | None = None,
) -> User:
    if get_user_by_email(session, email) is not None:
        raise DuplicateEmail
    user = User(
        email=email,
        hashed_password=hash_password(password) if password is not None else None,
        full_name=full_name,
        is_active=is_active,
        is_superuser=is_superuser,
        entra_oid=entra_oid,
    )
    session.add(user)
    _commit(session)
    return user


def update_user(session: Session, user: User, changes: dict[str, Any]) -> User:
    changes = dict(changes)
    email = changes.get("email")
    if email is not None and email != user.email:
        other = get_user_by_email(session, email)
        if other is not None and other.id != user.id:
            raise DuplicateEmail
    if "password" in changes:
        user.hashed_password = hash_password(changes.pop("password"))
    for name, value in changes.items():
        setattr(user, name, value)
    _commit(session)
    return user


def set_password(session: Session, user: User, password: str) -> None:
    user.hashed_password = hash_password(password)
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


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = get_user_by_email(session, email)
    if user is None:
        burn_password_check(password)
        return None
    if not verify_password(password, user.hashed_password):
        return None
    return user


def sync_entra_user(
    session: Session, oid: uuid.UUID, email: str, name: str | None, is_admin: bool
) -> User | None:
    """The user for an Entra ID identity: found by ``oid``, else linked by email, else created.

    The app role decides ``is_superuser`` on every sign-in. None when the email already belongs
    to another Entra ID identity.
    """
    user = session.scalars(select(User).where(User.entra_oid == oid)).first()
    if user is None:
        user = get_user_by_email(session, email)
        if user is not None:
            if user.entra_oid is not None:
                return None
            user.entra_oid = oid
    if user is None:
        user = User(email=email, full_name=name, entra_oid=oid, is_superuser=is_admin)
        session.add(user)
    if user.is_superuser != is_admin:
        user.is_superuser = is_admin
    if session.dirty or session.new:
        _commit(session)
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
