"""How the scale drill judges what it saw: the demotion's delay, lost writes and what each failed
write did, from recorded calls and database rows (no services needed)."""

from __future__ import annotations

from drills.demotion import Attempt, seen_seconds
from drills.scale_drill import KILLED, Faults, failed_writes, lost_writes, percentiles
from drills.scale_load import FailedWrite, Item

DEMOTED_AT = 100.0


def test_the_demotion_counts_from_the_acknowledgement_to_the_last_instance_refusing() -> None:
    attempts = [
        Attempt("b", 99.5, 200),
        Attempt("c", 99.6, 200),
        Attempt("b", 100.2, 400),  # b refuses at once
        Attempt("c", 100.3, 200),  # c still accepts (its record is up to 2 s old)
        Attempt("b", 101.0, 400),
        Attempt("c", 101.5, 403),
        Attempt("b", 102.0, 400),
        Attempt("c", 102.1, 400),
    ]
    assert seen_seconds(attempts, ["b", "c"], DEMOTED_AT) == 1.5


def test_an_instance_that_accepts_the_user_again_has_not_seen_the_demotion() -> None:
    attempts = [
        Attempt("b", 100.5, 400),
        Attempt("b", 101.0, 200),
        Attempt("b", 102.0, 400),
        Attempt("c", 100.5, 400),
    ]
    assert seen_seconds(attempts, ["b", "c"], DEMOTED_AT) == 2.0
    assert seen_seconds([*attempts, Attempt("c", 103.0, 200)], ["b", "c"], DEMOTED_AT) is None
    assert seen_seconds(attempts, ["b", "c", "d"], DEMOTED_AT) is None  # d never asked


def _item(id_: str, version: int, **state: object) -> Item:
    item = Item(id_, f"title-{id_}", version=version, sent=version)
    for name, value in state.items():
        setattr(item, name, value)
    return item


def test_a_row_other_than_the_last_acknowledged_write_left_is_a_lost_write() -> None:
    rows: dict[str, tuple[str, str | None]] = {
        "kept": ("title-kept", "v3"),
        "older": ("title-older", "v2"),  # v3 was acknowledged
        "revived": ("title-revived", "v1"),  # its delete was acknowledged
    }
    items = [
        _item("kept", 3),
        _item("older", 3),
        _item("revived", 1, deleted=True),
        _item("vanished", 0),  # acknowledged, then missing
        _item("gone", 2, deleted=True),
    ]
    assert lost_writes(items, rows) == ["older", "revived", "vanished"]


def test_after_a_failed_write_either_outcome_is_whole_but_nothing_else() -> None:
    update = _item("u", 4, sent=5, failed="update")
    delete = _item("d", 2, failed="delete")
    for rows in (
        {"u": ("title-u", "v4"), "d": ("title-d", "v2")},  # neither applied
        {"u": ("title-u", "v5")},  # both applied
    ):
        assert lost_writes([update, delete], rows) == []
    assert lost_writes([update], {"u": ("title-u", "v3")}) == ["u"]


def test_each_failed_write_is_told_by_the_database_and_placed_around_the_kill() -> None:
    faults = Faults(
        killed_at=100.0,
        down_at=101.0,
        back_in_rotation_after=8.0,
        redis_stopped_at=150.0,
        redis_down_seconds=10.0,
        back_on_redis_after=5.0,
        demoted_at=151.0,
        demotion_seen_seconds=1.0,
    )
    failed = [
        FailedWrite("create", 0, False, 99.0, "", None, "title-new", "title-new"),
        FailedWrite("update", 502, False, 100.5, KILLED, "u", "title-u", "v5"),
        FailedWrite("delete", 0, False, 101.5, "", "d", "title-d", "deleted"),
        FailedWrite("login", 503, True, 130.0, "a", None, None, "sign-in"),
        FailedWrite("login", 503, True, 100.2, KILLED, None, None, "sign-in"),
        FailedWrite("create", 500, False, 130.0, "a", None, "title-late", "title-late"),
    ]
    rows = {"x": ("title-new", "v0"), "u": ("title-u", "v4")}
    report = failed_writes(failed, rows, faults)
    outcomes = [write["outcome"] for write in report["each"]]
    assert outcomes == [
        "applied",
        "not applied",
        "applied",
        "no data written",
        "no data written",
        "not applied",
    ]
    assert report["while_instance_died"] == 3  # the sign-in the killed one shed is a shed one
    assert report["sign_ins_shed"] == 2
    assert report["count"] == 6  # the late 500 is neither: the drill's goal fails on it


def test_percentiles_of_a_phase() -> None:
    figures = percentiles([float(ms) for ms in range(1, 101)])
    assert figures == {"requests": 100, "p50": 51.0, "p95": 96.0, "p99": 100.0}
    assert percentiles([]) == {"requests": 0}
