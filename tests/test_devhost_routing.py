"""Route templates, constraints and precedence, as the Functions host's ASP.NET routing has them."""

from __future__ import annotations

import pytest

from devhost.routing import MethodNotAllowed, RouteMatch, Router, RouteTemplate, split_path


def router(*routes: tuple[str, list[str] | None, str]) -> Router[str]:
    return Router((RouteTemplate(template), methods, name) for template, methods, name in routes)


def resolve(table: Router[str], path: str, method: str = "GET") -> tuple[str, dict[str, str]]:
    found = table.resolve(method, path)
    assert isinstance(found, RouteMatch), f"{method} {path} -> {found}"
    return found.target, found.params


def test_paths_split_into_decoded_segments_with_an_optional_trailing_slash():
    assert split_path("/") == []
    assert split_path("/a/b/") == ["a", "b"]
    assert split_path("/a%2Fb/c%20d") == ["a/b", "c d"]
    assert split_path("/a//b") == ["a", "", "b"]


def test_literal_segments_ignore_case_and_a_trailing_slash():
    table = router(("api/v1/items", ["GET"], "items"))
    assert resolve(table, "/api/v1/items") == ("items", {})
    assert resolve(table, "/API/V1/Items/") == ("items", {})
    assert table.resolve("GET", "/api/v1/items/extra") is None
    assert table.resolve("GET", "/api/v1/items//") is None


def test_an_empty_template_matches_the_root():
    assert resolve(router(("", None, "root")), "/") == ("root", {})


@pytest.mark.parametrize(
    ("constraint", "accepted", "rejected"),
    [
        ("int", ["42", "-7", "2147483647"], ["4.2", "x", "2147483648", "٣"]),
        ("long", ["9223372036854775807"], ["9223372036854775808", "1e3"]),
        ("bool", ["true", "False"], ["yes", "1"]),
        (
            "guid",
            [
                "6f9619ff-8b86-d011-b42d-00cf4fc964ff",
                "6F9619FF8B86D011B42D00CF4FC964FF",
                "{6f9619ff-8b86-d011-b42d-00cf4fc964ff}",
            ],
            ["6f9619ff-8b86-d011-b42d", "6f9619ff8b86d011b42d00cf4fc964fg"],
        ),
        ("alpha", ["abc", "ABC"], ["ab1", "a-b"]),
        ("double", ["1.5", "-2", "1e3", "1,000.5", "NaN"], ["1.2.3", "abc"]),
        ("decimal", ["1.5"], ["NaN"]),
        ("datetime", ["2024-01-31", "2024-01-31T10:00:00"], ["yesterday"]),
        ("min(10)", ["10", "99"], ["9", "x"]),
        ("max(10)", ["10", "-3"], ["11"]),
        ("range(1,3)", ["1", "3"], ["0", "4"]),
        ("minlength(2)", ["ab"], ["a"]),
        ("maxlength(2)", ["ab"], ["abc"]),
        ("length(3)", ["abc"], ["ab", "abcd"]),
        ("length(2,3)", ["ab", "abc"], ["a", "abcd"]),
        ("regex(^[a-z]+-\\d{{2}}$)", ["ab-12", "AB-12"], ["ab-123", "12"]),
        ("regex(b)", ["abc"], ["xyz"]),  # unanchored, as in ASP.NET
        ("int:min(5)", ["5"], ["4", "x"]),
    ],
)
def test_inline_constraints(constraint, accepted, rejected):
    table = router((f"v/{{value:{constraint}}}", None, "v"))
    for value in accepted:
        assert resolve(table, f"/v/{value}") == ("v", {"value": value})
    for value in rejected:
        assert table.resolve("GET", f"/v/{value}") is None, value


def test_parameters_receive_percent_decoded_values():
    table = router(("cache/{pattern}", None, "cache"))
    assert resolve(table, "/cache/a%5C*b") == ("cache", {"pattern": "a\\*b"})
    assert resolve(table, "/cache/what%3F") == ("cache", {"pattern": "what?"})
    assert resolve(table, "/cache/a%2Fb") == ("cache", {"pattern": "a/b"})


def test_optional_parameter_and_default_value():
    table = router(("pages/{page?}", None, "pages"), ("posts/{n:int=1}", None, "posts"))
    assert resolve(table, "/pages") == ("pages", {})
    assert resolve(table, "/pages/3") == ("pages", {"page": "3"})
    assert resolve(table, "/posts") == ("posts", {"n": "1"})
    assert resolve(table, "/posts/7") == ("posts", {"n": "7"})
    assert table.resolve("GET", "/posts/x") is None


def test_catch_all_takes_the_rest_of_the_path_or_nothing():
    table = router(("files/{*path}", None, "files"))
    assert resolve(table, "/files/a/b%20c/d.txt") == ("files", {"path": "a/b c/d.txt"})
    assert resolve(table, "/files") == ("files", {})


def test_complex_segments_match_right_to_left():
    table = router(("reports/{name}.{ext}", None, "report"), ("v{major:int}/x", None, "ver"))
    assert resolve(table, "/reports/a.b.csv") == ("report", {"name": "a.b", "ext": "csv"})
    assert resolve(table, "/V2/x") == ("ver", {"major": "2"})
    assert table.resolve("GET", "/reports/noext") is None
    assert table.resolve("GET", "/vx/x") is None


def test_precedence_literal_then_constrained_then_parameter_then_optional_then_catch_all():
    table = router(
        ("users/{*rest}", None, "catch_all"),
        ("users/{name?}", None, "optional"),
        ("users/{name}", None, "parameter"),
        ("users/{id:int}", None, "constrained"),
        ("users/me", None, "literal"),
    )
    assert resolve(table, "/users/me")[0] == "literal"
    assert resolve(table, "/users/42")[0] == "constrained"
    assert resolve(table, "/users/bob")[0] == "parameter"
    assert resolve(table, "/users")[0] == "optional"
    assert resolve(table, "/users/a/b")[0] == "catch_all"


def test_earlier_segments_decide_precedence_first():
    table = router(("{a}/b", None, "param_first"), ("a/{b}", None, "literal_first"))
    assert resolve(table, "/a/b")[0] == "literal_first"


def test_a_route_that_does_not_take_the_method_falls_through_to_the_next():
    table = router(("users/me", ["GET"], "me"), ("users/{user_id}", ["GET", "DELETE"], "user"))
    assert resolve(table, "/users/me", "DELETE") == ("user", {"user_id": "me"})


def test_method_mismatch_lists_every_allowed_method():
    table = router(
        ("items", ["GET"], "list"), ("items", ["POST"], "create"), ("items/{id}", None, "x")
    )
    assert table.resolve("DELETE", "/items") == MethodNotAllowed(("GET", "POST"))
    assert table.resolve("GET", "/nothing") is None


@pytest.mark.parametrize(
    "template",
    [
        "a/{*rest}/b",
        "a/{b?}/c",
        "a/{}",
        "a/{b",
        "a/b}",
        "a/{x}{y}",
        "a/{x}/{X}",
        "a/{x:unknown}",
        "a/{x:regex(()}",
        "a/{x:min(a)}",
        "a/{x?=1}",
        "a//b",
    ],
)
def test_invalid_templates_are_rejected(template):
    with pytest.raises(ValueError):  # noqa: PT011 - each template has its own message
        RouteTemplate(template)


def test_escaped_braces_are_literal():
    assert resolve(router(("a{{b}}", None, "braces")), "/a%7Bb%7D") == ("braces", {})
