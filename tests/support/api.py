"""An HTTP client for the running app, with the sign-in and user-creation steps tests repeat."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    token: str
    id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    def __init__(self, url: str, superuser: str, password: str, env: dict[str, str]) -> None:
        self.url = url
        self.env = env
        self.http = httpx.Client(base_url=url, timeout=30)
        self._superuser = (superuser, password)
        self._admin: Account | None = None

    def __enter__(self) -> Api:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def login(self, email: str, password: str) -> str:
        response = self.http.post(
            "/api/v1/login/access-token", data={"username": email, "password": password}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def account(self, email: str, password: str) -> Account:
        token = self.login(email, password)
        me = self.http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        return Account(email, password, token, me.json()["id"])

    @property
    def admin(self) -> Account:
        if self._admin is None:
            self._admin = self.account(*self._superuser)
        return self._admin

    def new_user(self, **fields: Any) -> Account:
        """A fresh normal user, created by the superuser, signed in."""
        email = fields.pop("email", None) or f"user-{uuid.uuid4().hex[:10]}@example.com"
        password = "password-" + uuid.uuid4().hex[:8]
        body = {"email": email, "password": password, **fields}
        response = self.http.post("/api/v1/users/", json=body, headers=self.admin.headers)
        assert response.status_code == 200, response.text
        return self.account(email, password)
