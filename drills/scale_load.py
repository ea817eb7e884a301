"""The scale drill's mixed load: clients reading and writing their own items through the front
door, every acknowledged write recorded with what it returned, every read checked for staleness.

Each client is a user of its own. It loops over a weighted mix: ``/users/me``, one of its items,
its list of items, a read of an item it deleted, creates, updates and deletes, and now and then a
sign-in. An item carries its version in its description (``v0`` when created, one more with each
update the client sends), so a read tells which write it reflects.

Definitions (the report's):

- **acknowledged write**: a create, update or delete answered 2xx whose answer matches what was
  sent (the title and version sent, or the deleted item gone);
- **failed read**: a GET answered other than 2xx (404 for a deleted item), or not at all;
- **failed write**: a create, update, delete or sign-in answered other than 2xx, or not at all.
  Its item is left alone afterwards, so the database tells at the end whether it was applied;
- **stale read**: a read returning older data than an acknowledged write that completed before
  the read started. One client is its items' only writer and sends one request at a time, so
  every write it acknowledged completed before its next read started: an item read returning a
  version below the newest acknowledged one, or 404 while no delete was sent, is stale; so is a
  read of an item after its delete was acknowledged that returns it, and a list that misses an
  item whose create was acknowledged, shows one older than acknowledged, or shows a deleted one.
  A version newer than acknowledged cannot happen: the client writes nothing it did not send;
- **lost write**: at the end, an item whose row in the database is not what its last
  acknowledged write left (or, after a failed write, what that write would have left).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from drills.workers import Workers

REQUEST_TIMEOUT_SECONDS = 30.0
READS = frozenset({"me", "item", "list", "gone"})
WRITES = frozenset({"create", "update", "delete", "login"})
MIX: dict[str, int] = {
    "me": 15,
    "item": 30,
    "list": 18,
    "gone": 5,
    "create": 10,
    "update": 14,
    "delete": 6,
    "login": 2,
}
MAX_LIVE_ITEMS = 8
PAGE = "/api/v1/items/?skip=0&limit=100"
DELETED = 1 << 30  # an item's rank once deleted: above every version


@dataclass(frozen=True, slots=True)
class Call:
    kind: str  # one of READS or WRITES
    started: float  # time.time()
    ended: float
    status: int  # 0: no answer
    server: str  # which instance answered (HAProxy's X-Served-By), "" when none did
    ok: bool
    retry_after: bool  # the answer carried Retry-After (shed load, to be tried again)


@dataclass
class Item:
    id: str
    title: str
    version: int = 0  # the newest acknowledged version
    sent: int = 0  # the newest version sent
    deleted: bool = False  # a delete was acknowledged
    failed: str | None = None  # the kind of the failed write that froze it
    acknowledged: list[dict[str, Any]] = field(default_factory=list)  # what each write returned


@dataclass(frozen=True, slots=True)
class Stale:
    kind: str
    item: str
    acknowledged: str  # what the newest acknowledged write left
    returned: str
    server: str
    at: float


@dataclass(frozen=True, slots=True)
class FailedWrite:
    kind: str
    status: int
    retry_after: bool
    at: float
    server: str
    item: str | None
    title: str | None
    tried: str  # the version, deletion or title sent


@dataclass
class Client:
    email: str
    password: str
    token: str
    items: dict[str, Item] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)  # deleted items, to read back


class MixedLoad(Workers):
    def __init__(self, url: str, clients: Sequence[Client], *, seconds: float, pause: float):
        super().__init__(len(clients), join_timeout=REQUEST_TIMEOUT_SECONDS + 5)
        self.url = url
        self.clients = list(clients)
        self.seconds = seconds
        self.pause = pause
        self.calls: list[Call] = []
        self.stale: list[Stale] = []
        self.failed_writes: list[FailedWrite] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()

    @property
    def items(self) -> list[Item]:
        return [item for client in self.clients for item in client.items.values()]

    def work(self, index: int) -> None:
        client = self.clients[index]
        chooser = random.Random(index)
        kinds, weights = list(MIX), list(MIX.values())
        deadline = time.monotonic() + self.seconds
        with httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT_SECONDS) as http:
            while not self.stopping and time.monotonic() < deadline:
                kind = chooser.choices(kinds, weights)[0]
                getattr(self, f"_{kind}")(http, client, chooser)
                time.sleep(self.pause)

    # --- one request of each kind ---------------------------------------------------------

    def _me(self, http: httpx.Client, client: Client, chooser: random.Random) -> None:
        self._send(http, client, "me", "GET", "/api/v1/users/me")

    def _item(self, http: httpx.Client, client: Client, chooser: random.Random) -> None:
        item = self._pick(client, chooser)
        if item is None:
            return self._create(http, client, chooser)
        started = time.time()
        response, call = self._send(
            http, client, "item", "GET", f"/api/v1/items/{item.id}", accept=(200, 404)
        )
        if response is None:
            return None
        returned = DELETED if call.status == 404 else _version(response.json())
        if returned < item.version or (call.status == 404 and not item.deleted):
            got = "absent" if call.status == 404 else f"v{returned}"
            self._stale("item", item, got, call.server, started)
        return None

    def _gone(self, http: httpx.Client, client: Client, chooser: random.Random) -> None:
        if not client.gone:
            return self._me(http, client, chooser)
        item = client.items[chooser.choice(client.gone)]
        started = time.time()
        _, call = self._send(http, client, "gone", "GET", f"/api/v1/items/{item.id}", accept=(404,))
        if call.status == 200:
            self._stale("gone", item, "present", call.server, started)
        return None

    def _list(self, http: httpx.Client, client: Client, chooser: random.Random) -> None:
        started = time.time()
        response, call = self._send(http, client, "list", "GET", PAGE)
        if response is None:
            return
        shown = {row["id"]: _version(row) for row in response.json()["data"]}
        for item in client.items.values():
            if item.failed is not None:
                continue  # its state is what the failed write left, which only the end tells
            if item.deleted and item.id in shown:
                self._stale("list", item, f"v{shown[item.id]}", call.server, started)
            elif not item.deleted and shown.get(item.id, -1) < item.version:
                got = f"v{shown[item.id]}" if item.id in shown else "absent"
                self._stale("list", item, got, call.server, started)

    def _create(self, http: httpx.Client, client: Client, chooser: random.Random) -> None:
        if sum(not i.deleted and i.failed is None for i in client.items.values()) >= MAX_LIVE_ITEMS:
            return self._update(http, client, chooser)
        title = f"scale-{uuid.uuid4().hex[:16]}"
        body = {"title": title, "description": "v0"}
        response, call = self._send(http, client, "create", "POST", "/api/v1/items/", body)
        answer = _json(response)
        if answer is not None and answer.get("title") == title and _version(answer) == 0:
            item = Item(answer["id"], title)
            item.acknowledged.append(answer)
            client.items[item.id] = item
        else:
            self._failed(call, None, title, "create")
        return None

    def _update(self, http: httpx.Client, client: Client, chooser: random.Random) -> None:
        item = self._pick(client, chooser)
        if item is None:
            return self._create(http, client, chooser)
        item.sent += 1
        body = {"description": f"v{item.sent}"}
        response, call = self._send(http, client, "update", "PUT", f"/api/v1/items/{item.id}", body)
        answer = _json(response)
        if answer is not None and answer.get("id") == item.id and _version(answer) == item.sent:
            item.version = item.sent
            item.acknowledged.append(answer)
        else:
            item.failed = "update"
            self._failed(call, item, item.title, f"v{item.sent}")
        return None

    def _delete(self, http: httpx.Client, client: Client, chooser: random.Random) -> None:
        item = self._pick(client, chooser)
        if item is None:
            return self._create(http, client, chooser)
        response, call = self._send(http, client, "delete", "DELETE", f"/api/v1/items/{item.id}")
        if response is not None:
            item.deleted = True
            item.acknowledged.append(response.json())
            client.gone.append(item.id)
        else:
            item.failed = "delete"
            self._failed(call, item, item.title, "deleted")
        return None

    def _login(self, http: httpx.Client, client: Client, chooser: random.Random) -> None:
        form = {"username": client.email, "password": client.password}
        response, call = self._send(
            http, client, "login", "POST", "/api/v1/login/access-token", form=form
        )
        answer = _json(response)
        if answer is not None and isinstance(answer.get("access_token"), str):
            client.token = answer["access_token"]
        else:
            self._failed(call, None, None, "sign-in")

    # --- bookkeeping ----------------------------------------------------------------------

    def _pick(self, client: Client, chooser: random.Random) -> Item | None:
        live = [i for i in client.items.values() if not i.deleted and i.failed is None]
        return chooser.choice(live) if live else None

    def _send(
        self,
        http: httpx.Client,
        client: Client,
        kind: str,
        method: str,
        path: str,
        body: object = None,
        *,
        form: dict[str, str] | None = None,
        accept: tuple[int, ...] = (200,),
    ) -> tuple[httpx.Response | None, Call]:
        """The response when its status is one of ``accept`` (else None), and the call."""
        started = time.time()
        headers = {} if form else {"Authorization": f"Bearer {client.token}"}
        response: httpx.Response | None = None
        try:
            response = http.request(method, path, json=body, data=form, headers=headers)
            status, server = response.status_code, response.headers.get("x-served-by", "")
            retry_after = "retry-after" in response.headers
        except httpx.HTTPError as exc:
            status, server, retry_after = 0, "", False
            with self._lock:
                self.problems.append(f"{kind}: {type(exc).__name__}: {exc}")
        call = Call(kind, started, time.time(), status, server, status in accept, retry_after)
        with self._lock:
            self.calls.append(call)
        return (response if call.ok else None), call

    def _stale(self, kind: str, item: Item, returned: str, server: str, at: float) -> None:
        acknowledged = "absent" if item.deleted else f"v{item.version}"
        with self._lock:
            self.stale.append(Stale(kind, item.id, acknowledged, returned, server, at))

    def _failed(self, call: Call, item: Item | None, title: str | None, tried: str) -> None:
        failed = FailedWrite(
            call.kind,
            call.status,
            call.retry_after,
            call.started,
            call.server,
            item.id if item else None,
            title,
            tried,
        )
        with self._lock:
            self.failed_writes.append(failed)


def _json(response: httpx.Response | None) -> dict[str, Any] | None:
    if response is None:
        return None
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _version(item: dict[str, Any]) -> int:
    description = item.get("description") or ""
    return int(description[1:]) if description.startswith("v") else -1
