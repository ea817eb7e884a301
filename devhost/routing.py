"""Functions route templates, matched and ranked the way the host's ASP.NET Core routing does.

A template such as ``api/users/{id:guid}`` is split into segments. Literal segments compare
case-insensitively; ``{name}`` parameters take one segment, with inline constraints, ``?`` for
optional and ``=value`` for a default; ``{*rest}`` takes the remainder of the path. Paths are
split before percent-decoding, so ``%2F`` stays inside one segment's value.

Precedence follows ASP.NET's ``RoutePrecedence``: every segment gets a digit (literal 1,
constrained or multi-part 2, parameter 3, optional 4, catch-all 5) and templates are tried in
order of their digit sequences, so ``users/me`` (1, 1) wins over ``users/{user_id}`` (1, 3).
A route whose path matches but whose methods do not is skipped, as the host's method policy
does; only when no route accepts the method is the answer 405.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from devhost.constraints import Constraint, parse_constraint

_LITERAL, _CONSTRAINED, _PARAMETER, _OPTIONAL, _CATCH_ALL = 1, 2, 3, 4, 5
_FORBIDDEN_IN_NAME = frozenset("/{}?*=:")


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    constraints: tuple[Constraint, ...]
    optional: bool
    default: str | None
    catch_all: bool

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.constraints)

    @property
    def precedence(self) -> int:
        if self.catch_all:
            return _CATCH_ALL
        if self.optional or self.default is not None:
            return _OPTIONAL
        return _CONSTRAINED if self.constraints else _PARAMETER


class _Literal:
    __slots__ = ("lowered",)
    precedence = _LITERAL

    def __init__(self, text: str) -> None:
        self.lowered = text.lower()

    def match(self, text: str, values: dict[str, str]) -> bool:
        return text.lower() == self.lowered


class _Single:
    """A segment that is exactly one parameter."""

    __slots__ = ("parameter", "precedence")

    def __init__(self, parameter: Parameter) -> None:
        self.parameter = parameter
        self.precedence = parameter.precedence

    def match(self, text: str, values: dict[str, str]) -> bool:
        if not text or not self.parameter.accepts(text):
            return False
        values[self.parameter.name] = text
        return True


class _Complex:
    """A segment mixing literals and parameters, such as ``{name}.{ext}`` or ``v{version:int}``."""

    __slots__ = ("parameters", "pattern")
    precedence = _CONSTRAINED

    def __init__(self, parts: Sequence[str | Parameter]) -> None:
        pieces: list[str] = []
        parameters: list[Parameter] = []
        for index, part in enumerate(parts):
            if isinstance(part, str):
                pieces.append(re.escape(part))
                continue
            if part.catch_all or part.optional or part.default is not None:
                raise ValueError(
                    f"'{part.name}' must be a whole segment to be optional, defaulted or catch-all"
                )
            if index and isinstance(parts[index - 1], Parameter):
                raise ValueError("two parameters must be separated by a literal in a segment")
            # Greedy groups reproduce ASP.NET's right-to-left matching of complex segments.
            pieces.append("(.+)")
            parameters.append(part)
        self.pattern = re.compile("".join(pieces), re.IGNORECASE | re.DOTALL)
        self.parameters = tuple(parameters)

    def match(self, text: str, values: dict[str, str]) -> bool:
        found = self.pattern.fullmatch(text)
        if found is None:
            return False
        for parameter, value in zip(self.parameters, found.groups(), strict=True):
            if not parameter.accepts(value):
                return False
            values[parameter.name] = value
        return True


_Segment = _Literal | _Single | _Complex


def _read_parameter(text: str, start: int) -> tuple[str, int]:
    """The body of the ``{...}`` opened just before ``start`` (``{{``/``}}`` unescaped), and
    the index after its closing brace."""
    body: list[str] = []
    index = start
    while index < len(text):
        char = text[index]
        if char in "{}" and text.startswith(char * 2, index):
            body.append(char)
            index += 2
        elif char == "}":
            return "".join(body), index + 1
        elif char == "{":
            raise ValueError("'{' inside a parameter must be escaped as '{{'")
        else:
            body.append(char)
            index += 1
    raise ValueError("a parameter is missing its closing '}'")


def _constraint_end(text: str, start: int) -> int:
    """Where the constraint starting at ``text[start]`` ends: an argument list runs to the
    first ``)`` followed by another constraint, a default or the end, so regexes may hold ``:``
    and parentheses."""
    index = start
    while index < len(text) and text[index] not in ":=(":
        index += 1
    if index < len(text) and text[index] == "(":
        close = index
        while True:
            close = text.find(")", close + 1)
            if close < 0:
                raise ValueError(f"the constraint '{text[start:]}' is missing its ')'")
            if close + 1 == len(text) or text[close + 1] in ":=":
                return close + 1
    return index


def _parse_parameter(body: str) -> Parameter:
    text = body.strip()
    catch_all = text.startswith("*")
    text = text.lstrip("*")
    optional = text.endswith("?")
    if optional:
        text = text[:-1]
    stop = len(text)
    for marker in ":=":
        found = text.find(marker)
        if 0 <= found < stop:
            stop = found
    name = text[:stop].strip()
    if not name or _FORBIDDEN_IN_NAME.intersection(name):
        raise ValueError(f"'{{{body}}}' does not have a valid parameter name")
    constraints: list[Constraint] = []
    index = stop
    while index < len(text) and text[index] == ":":
        end = _constraint_end(text, index + 1)
        constraints.append(parse_constraint(text[index + 1 : end]))
        index = end
    default = None
    if index < len(text):  # only a default can remain after the constraints
        default = text[index + 1 :]
    if optional and default is not None:
        raise ValueError(f"'{name}' cannot be both optional and have a default value")
    if catch_all and optional:
        raise ValueError(f"the catch-all parameter '{name}' cannot be marked optional")
    return Parameter(name, tuple(constraints), optional, default, catch_all)


def _parse_parts(segment: str) -> list[str | Parameter]:
    parts: list[str | Parameter] = []
    literal: list[str] = []
    index = 0
    while index < len(segment):
        char = segment[index]
        if char in "{}" and segment.startswith(char * 2, index):
            literal.append(char)
            index += 2
        elif char == "{":
            body, index = _read_parameter(segment, index + 1)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_parse_parameter(body))
        elif char == "}":
            raise ValueError("'}' outside a parameter must be escaped as '}}'")
        else:
            literal.append(char)
            index += 1
    if literal:
        parts.append("".join(literal))
    return parts


def _segment(parts: Sequence[str | Parameter]) -> _Segment:
    if len(parts) > 1:
        return _Complex(parts)
    part = parts[0]
    return _Literal(part) if isinstance(part, str) else _Single(part)


class RouteTemplate:
    """One parsed template: its precedence and how it matches a decoded segment list."""

    def __init__(self, template: str) -> None:
        text = template.strip("/")
        self.text = text
        self.literal_key: tuple[str, ...] | None = None
        segments: list[_Segment] = []
        defaults: list[tuple[int, str, str]] = []
        names: set[str] = set()
        catch_all: Parameter | None = None
        required = 0
        for index, raw in enumerate(text.split("/") if text else []):
            if catch_all is not None:
                raise ValueError("a catch-all parameter must be the last segment")
            if not raw:
                raise ValueError("the template contains an empty segment")
            parts = _parse_parts(raw)
            for part in parts:
                if isinstance(part, Parameter):
                    if part.name.lower() in names:
                        raise ValueError(f"the parameter '{part.name}' appears more than once")
                    names.add(part.name.lower())
            whole = parts[0] if len(parts) == 1 and isinstance(parts[0], Parameter) else None
            if whole is not None and whole.default is not None:
                defaults.append((index, whole.name, whole.default))
            if whole is not None and whole.catch_all:
                catch_all = whole
            elif whole is not None and whole.precedence == _OPTIONAL:
                segments.append(_Single(whole))
            elif required < index:
                raise ValueError("only the last segments of a template may be optional")
            else:
                segments.append(_segment(parts))
                required = index + 1
        self._segments = tuple(segments)
        self._defaults = tuple(defaults)
        self._catch_all = catch_all
        self._required = required
        self.precedence = tuple(segment.precedence for segment in segments) + (
            (catch_all.precedence,) if catch_all else ()
        )
        if all(isinstance(segment, _Literal) for segment in segments) and catch_all is None:
            self.literal_key = tuple(
                segment.lowered for segment in segments if isinstance(segment, _Literal)
            )

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        """Route values for ``segments`` (already percent-decoded), or None."""
        count = len(segments)
        fixed = len(self._segments)
        if count < self._required or (count > fixed and self._catch_all is None):
            return None
        values: dict[str, str] = {}
        for index in range(min(count, fixed)):
            if not self._segments[index].match(segments[index], values):
                return None
        for index, name, default in self._defaults:
            if index >= count:
                values[name] = default
        if self._catch_all is not None and count > fixed:
            rest = "/".join(segments[fixed:])
            if not self._catch_all.accepts(rest):
                return None
            values[self._catch_all.name] = rest
        return values


@dataclass(frozen=True, slots=True)
class RouteMatch[T]:
    target: T
    params: dict[str, str]
    template: str  # what matched, as declared: logs show it instead of the values


@dataclass(frozen=True, slots=True)
class MethodNotAllowed:
    allow: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Route[T]:
    template: RouteTemplate
    methods: frozenset[str] | None
    target: T


def full_template(route_prefix: str, route: str) -> str:
    """The template a function answers on: host.json's routePrefix, then its own route."""
    return "/".join(part for part in (route_prefix.strip("/"), route.strip("/")) if part)


def split_path(raw_path: str) -> list[str]:
    """The percent-decoded segments of a request path; one trailing slash is optional."""
    path = raw_path[1:] if raw_path.startswith("/") else raw_path
    if path.endswith("/"):
        path = path[:-1]
    if not path:
        return []
    return [unquote(part) if "%" in part else part for part in path.split("/")]


class Router[T]:
    """Finds the target for a method and path among ``(template, methods, target)`` routes
    (``methods`` empty or None: every method).

    Fully literal templates sit in a dict (the common case costs one lookup); they always
    outrank any other template matching the same path, so the rest are only tried after them.
    """

    def __init__(self, routes: Iterable[tuple[RouteTemplate, Collection[str] | None, T]]) -> None:
        self._literal: dict[tuple[str, ...], list[_Route[T]]] = {}
        dynamic: list[tuple[tuple[int, ...], int, _Route[T]]] = []
        for order, (template, methods, target) in enumerate(routes):
            allowed = frozenset(method.upper() for method in methods) if methods else None
            route = _Route(template, allowed, target)
            if template.literal_key is not None:
                self._literal.setdefault(template.literal_key, []).append(route)
            else:
                dynamic.append((template.precedence, order, route))
        dynamic.sort(key=lambda entry: entry[:2])
        self._dynamic = tuple(route for _, _, route in dynamic)

    def resolve(self, method: str, raw_path: str) -> RouteMatch[T] | MethodNotAllowed | None:
        segments = split_path(raw_path)
        allowed: set[str] = set()
        for route in self._literal.get(tuple(segment.lower() for segment in segments), ()):
            if route.methods is None or method in route.methods:
                return RouteMatch(route.target, {}, route.template.text)
            allowed.update(route.methods)
        for route in self._dynamic:
            values = route.template.match(segments)
            if values is None:
                continue
            if route.methods is None or method in route.methods:
                return RouteMatch(route.target, values, route.template.text)
            allowed.update(route.methods)
        return MethodNotAllowed(tuple(sorted(allowed))) if allowed else None
