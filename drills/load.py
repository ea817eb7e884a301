"""A bounded load of clients reading and writing items, every write's acknowledgement recorded.

Each client signs in as its own account and loops: create an item, read it back, list a page.
A create answered 2xx is an acknowledgement: the id it returned must be in the database
afterwards, whatever happened in between. Any answer other than 2xx, or none at all, is a failed
request. Bounded in requests per client and in seconds; ``stop()`` ends it early.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from drills.workers import Workers

REQUEST_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Sample:
    kind: str  # create, read or list
    started: float  # time.time()
    ended: float
    status: int  # 0: no answer
    retry_after: bool = False  # the answer carried Retry-After

    @property
    def failed(self) -> bool:
        return not 200 <= self.status < 300


class ItemLoad(Workers):
    def __init__(
        self,
        url: str,
        tokens: Sequence[str],
        *,
        requests_per_client: int,
        seconds: float,
        pause: float = 0.02,
    ) -> None:
        super().__init__(len(tokens), join_timeout=REQUEST_TIMEOUT_SECONDS + 5)
        self.url = url
        self.tokens = list(tokens)
        self.requests_per_client = requests_per_client
        self.seconds = seconds
        self.pause = pause
        self.samples: list[Sample] = []
        self.acknowledged: list[str] = []
        self.unacknowledged: dict[str, int] = {}  # title of a create not answered 2xx: status
        self.problems: list[str] = []
        self._lock = threading.Lock()

    @property
    def failed(self) -> list[Sample]:
        return [sample for sample in self.samples if sample.failed]

    def work(self, index: int) -> None:
        deadline = time.monotonic() + self.seconds
        headers = {"Authorization": f"Bearer {self.tokens[index]}"}
        sent = 0
        with httpx.Client(
            base_url=self.url, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
        ) as http:
            while sent < self.requests_per_client and not self.stopping:
                if time.monotonic() > deadline:
                    break
                title = f"load-{uuid.uuid4().hex[:12]}"
                created, status = self._send(
                    http, "create", "POST", "/api/v1/items/", {"title": title}
                )
                item = _item_id(created)
                if item is not None:
                    with self._lock:
                        self.acknowledged.append(item)
                    self._send(http, "read", "GET", f"/api/v1/items/{item}")
                else:
                    with self._lock:
                        self.unacknowledged[title] = status
                self._send(http, "list", "GET", "/api/v1/items/?skip=0&limit=10")
                sent += 3
                time.sleep(self.pause)

    def _send(
        self, http: httpx.Client, kind: str, method: str, path: str, body: object = None
    ) -> tuple[httpx.Response | None, int]:
        """The response when it is a 2xx (else None), and the status (0: no answer)."""
        started = time.time()
        response: httpx.Response | None
        try:
            response = http.request(method, path, json=body)
            status = response.status_code
        except httpx.HTTPError as exc:
            response, status = None, 0
            with self._lock:
                self.problems.append(f"{kind}: {type(exc).__name__}: {exc}")
        retry_after = response is not None and "retry-after" in response.headers
        with self._lock:
            self.samples.append(Sample(kind, started, time.time(), status, retry_after))
        return (response if response is not None and 200 <= status < 300 else None), status


def _item_id(response: httpx.Response | None) -> str | None:
    try:
        item = response.json().get("id") if response is not None else None
    except (ValueError, AttributeError):
        return None
    return item if isinstance(item, str) else None


def access_token(http: httpx.Client, email: str, password: str) -> str:
    """Sign in with the API's password form; the bearer token."""
    response = http.post(
        "/api/v1/login/access-token", data={"username": email, "password": password}
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def accounts(url: str, superuser: tuple[str, str], count: int) -> list[str]:
    """``count`` new users, created by the superuser; their access tokens."""
    with httpx.Client(base_url=url, timeout=30) as http:
        admin = access_token(http, *superuser)
        tokens = []
        for _ in range(count):
            email, password = f"drill-{uuid.uuid4().hex[:10]}@example.com", secrets.token_hex(8)
            created = http.post(
                "/api/v1/users/",
                json={"email": email, "password": password},
                headers={"Authorization": f"Bearer {admin}"},
            )
            created.raise_for_status()
            tokens.append(access_token(http, email, password))
    return tokens
