"""Password hashing: argon2id at the template's cost, constant-time checks, bounded concurrency."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import PasswordHasher

from shared import security


def test_hashes_are_argon2id_at_the_templates_cost_and_verify():
    hashed = security.hash_password("correct horse")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert security.verify_password("correct horse", hashed)
    assert not security.verify_password("wrong horse", hashed)
    assert not security.verify_password("correct horse", None)  # no password: never a match
    assert not security.verify_password("correct horse", "not a hash")


class _CountingHasher:
    """A real, cheap argon2 hasher that records how many hashes run at once."""

    def __init__(self) -> None:
        self._real = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
        self._lock = threading.Lock()
        self.running = self.peak = 0

    def _enter(self) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)

    def _leave(self) -> None:
        with self._lock:
            self.running -= 1

    def hash(self, password: str) -> str:
        self._enter()
        try:
            return self._real.hash(password)
        finally:
            self._leave()

    def verify(self, hashed: str, password: str) -> bool:
        self._enter()
        try:
            return self._real.verify(hashed, password)
        finally:
            self._leave()


def test_no_more_hashes_run_at_once_than_there_are_cpus(monkeypatch: pytest.MonkeyPatch):
    counting = _CountingHasher()
    monkeypatch.setattr(security, "_hasher", counting)
    hashed = counting.hash("password-1234")
    threads = 4 * (os.cpu_count() or 1)
    with ThreadPoolExecutor(threads) as pool:
        results = list(
            pool.map(lambda _: security.verify_password("password-1234", hashed), range(200))
        )
    assert all(results)
    assert 1 <= counting.peak <= (os.cpu_count() or 1)
