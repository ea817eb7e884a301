"""Password hashing: argon2id at the template's cost, constant-time checks, bounded concurrency."""

from __future__ import annotations

import os
import threading
import time
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


class _HeldHasher(_CountingHasher):
    """Every verification waits for ``release``: the slots stay taken while a test looks."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def verify(self, hashed: str, password: str) -> bool:
        self._enter()
        try:
            assert self.release.wait(10)
            return self._real.verify(hashed, password)
        finally:
            self._leave()


def test_hashes_run_at_most_concurrency_at_once_and_past_the_queue_fail_at_once(
    monkeypatch: pytest.MonkeyPatch,
):
    held = _HeldHasher()
    monkeypatch.setattr(security, "_hasher", held)
    slots = security.HashSlots(concurrency=2, queue=1)
    monkeypatch.setattr(security, "hash_slots", lambda: slots)
    hashed = held.hash("password-1234")
    with ThreadPoolExecutor(3) as pool:
        admitted = [
            pool.submit(security.verify_password, "password-1234", hashed) for _ in range(3)
        ]
        deadline = time.monotonic() + 10
        while held.running < 2:  # two hashing, the third queued behind them
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(security.HashingBusy):
            security.verify_password("password-1234", hashed)
        assert time.monotonic() - started < 1  # refused at once, not after a wait
        held.release.set()
        assert [future.result(10) for future in admitted] == [True, True, True]
    assert held.peak == 2


def test_one_hash_per_cpu_and_half_as_many_waiting_by_default():
    from shared.config import load_settings

    settings = load_settings({})
    cpus = os.cpu_count() or 1
    assert settings.password_hash_concurrency == cpus
    assert settings.password_hash_queue == max(1, cpus // 2)
