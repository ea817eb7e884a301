"""Two builds answer byte for byte alike: an earlier checkout and this one, same requests.

Starts ``manage.py serve`` from ``--before`` (a checkout of an earlier commit, e.g. ``git
worktree add --detach /tmp/before <commit>``; run with this checkout's virtual environment) and
from this checkout, on one fresh database and Redis, each with its own cache namespace and the
same secrets, so a token either signs is good for both. The bench user and its 20 items are
created through this checkout; then each request below goes to both builds twice (a cache miss,
then a hit), and the status, body and headers of all four answers must be equal (``date`` aside).
Exit status 0 only when every one was. Run from the repository root (needs PostgreSQL, Redis):

    .venv/bin/python -m bench.same_responses --before /tmp/before
"""

from __future__ import annotations

import argparse
import os
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.api_throughput import PYTHON, ROOT, Server, bearer, seed, start_process, stop_server
from tests.conftest import REDIS_URL, app_env, create_superuser, migrate
from tests.support.services import free_port, temporary_database

ORIGIN = "https://app.example.com"
IGNORED_HEADERS = {"date"}


def requests(token: str, admin: str, item_id: str) -> list[tuple[str, str, dict[str, str]]]:
    user, superuser = bearer(token), bearer(admin)
    return [
        ("users/me", "/api/v1/users/me", user),
        ("users/me, CORS", "/api/v1/users/me", {**user, "Origin": ORIGIN}),
        ("items", "/api/v1/items/", user),
        ("items, a page", "/api/v1/items/?skip=3&limit=5", user),
        ("items, superuser", "/api/v1/items/", superuser),
        ("an item", f"/api/v1/items/{item_id}", user),
        ("an unknown item", f"/api/v1/items/{uuid.uuid4()}", user),
        ("a bad page", "/api/v1/items/?limit=0", user),
        ("no token", "/api/v1/users/me", {}),
        ("a bad token", "/api/v1/users/me", bearer(token[:-2] + "xx")),
    ]


def answer(
    server: Server, path: str, headers: dict[str, str]
) -> tuple[int, bytes, list[tuple[str, str]]]:
    response = httpx.get(server.url + path, headers=headers, timeout=30)
    kept = sorted(
        (name.lower(), value)
        for name, value in response.headers.multi_items()
        if name.lower() not in IGNORED_HEADERS
    )
    return response.status_code, response.content, kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the earlier checkout")
    args = parser.parse_args()
    before = args.before.resolve()
    if not (before / "manage.py").is_file():
        raise SystemExit(f"{before}: no manage.py")
    with ExitStack() as stack, tempfile.TemporaryDirectory() as directory:
        settings = Path(directory) / "absent.local.settings.json"
        database = stack.enter_context(temporary_database("stratus_same"))
        migrate(database)
        servers = {}
        for label, tree in (("before", before), ("after", ROOT)):
            env = app_env(database, REDIS_URL, CACHE_PREFIX=f"stratus-same-{uuid.uuid4().hex[:8]}")
            if label == "after":
                create_superuser(env)
            port = free_port()
            command = [PYTHON, "manage.py", "--settings", str(settings), "serve"]
            servers[label] = start_process(
                label,
                [*command, "--port", str(port)],
                tree,
                {**os.environ, **env},
                port,
                "/healthz",
            )
            stack.callback(stop_server, servers[label])
        token, admin = seed(servers["after"])
        item_id = httpx.get(
            servers["after"].url + "/api/v1/items/", headers=bearer(token), timeout=30
        ).json()["data"][0]["id"]
        print(f"before: {before}; after: {ROOT}")
        print("| request | status | bytes | miss and hit, before and after |")
        print("|---|---:|---:|---|")
        different = 0
        for name, path, headers in requests(token, admin, item_id):
            answers = [
                answer(servers[label], path, headers)
                for label in ("before", "after")
                for _ in range(2)
            ]
            same = all(found == answers[0] for found in answers)
            different += not same
            status, body, _ = answers[0]
            print(f"| {name} | {status} | {len(body)} | {'identical' if same else 'DIFFERENT'} |")
            if not same:
                for found in answers:
                    print(f"    {found}")
    return 1 if different else 0


if __name__ == "__main__":
    raise SystemExit(main())
