"""Route declarations state only what differs: the rest is derived as FastAPI derives it."""

from __future__ import annotations

from collections.abc import Iterator

import azure.functions as func
import pytest

from shared.http import ROUTES, ApiRequest, Router, RouteSpec, route


@pytest.fixture
def registered() -> Iterator[None]:
    """What a test registers is taken out of the process's route table afterwards."""
    before = len(ROUTES)
    yield
    del ROUTES[before:]


def _last() -> RouteSpec:
    return ROUTES[-1]


def test_a_routers_tag_gives_the_operation_id_and_the_name_gives_the_summary(registered):
    router = Router(func.Blueprint(), tag="things")

    @router.put("api/v1/things/{thing_id}/labels/{label}", path_params={"thing_id": "uuid"})
    def relabel_thing(req: ApiRequest) -> None:
        """Give a thing another label."""

    spec = _last()
    assert spec.method == "PUT"
    assert spec.tags == ("things",)
    assert spec.operation_id == "things-relabel_thing"
    assert spec.summary == "Relabel Thing"
    assert spec.description == "Give a thing another label."
    assert dict(spec.path_params) == {"thing_id": "uuid", "label": "string"}
    assert list(spec.path_params) == ["thing_id", "label"]  # the path's order, as in OpenAPI


def test_explicit_values_win_where_the_contract_differs(registered):
    router = Router(func.Blueprint(), tag="cache")

    @router.get("api/v1/cache/stats", operation_id="cache-stats", summary="Cache Statistics")
    def cache_stats(req: ApiRequest) -> None:
        pass

    spec = _last()
    assert (spec.operation_id, spec.summary) == ("cache-stats", "Cache Statistics")


def test_without_a_tag_the_operation_id_is_the_function_name(registered):
    @route(func.Blueprint(), "probe", "GET")
    def probe(req: ApiRequest) -> None:
        pass

    spec = _last()
    assert (spec.operation_id, spec.summary, spec.tags) == ("probe", "Probe", ())


def test_a_path_parameter_the_path_does_not_have_is_refused(registered):
    router = Router(func.Blueprint(), tag="things")
    with pytest.raises(TypeError, match=r"path_params \['id'\] are not in 'api/v1/things/'"):

        @router.get("api/v1/things/", path_params={"id": "uuid"})
        def read_things(req: ApiRequest) -> None:
            pass


def test_every_route_of_the_app_follows_the_rule_or_says_why_not():
    """The app's exceptions to the derived values are the contract's own names."""
    import function_app  # noqa: F401  (registers every route)

    documented = [spec for spec in ROUTES if spec.in_schema]  # not the docs pages
    exceptions = {
        spec.name: (spec.operation_id, spec.summary)
        for spec in documented
        if (spec.operation_id, spec.summary)
        != (f"{spec.tags[0]}-{spec.name}", spec.name.replace("_", " ").title())
    }
    assert {"cache_stats", "send_test_email", "openapi_document"} <= exceptions.keys()
    # Only these may differ (the private route exists in development only).
    assert (
        exceptions.items()
        <= {
            "cache_stats": ("cache-stats", "Cache Statistics"),
            "clear_cache": ("cache-clear", "Clear Cache"),
            "reconnect_cache": ("cache-reconnect", "Reconnect Cache"),
            "invalidate_cache": ("cache-invalidate", "Invalidate Cache Keys"),
            "link_entra_identity_me": ("users-link_entra_identity_me", "Link Entra ID Identity Me"),
            "link_entra_identity": ("users-link_entra_identity", "Link Entra ID Identity"),
            "unlink_entra_identity": ("users-unlink_entra_identity", "Unlink Entra ID Identity"),
            "send_test_email": ("utils-test_email", "Test Email"),
            "openapi_document": ("utils-openapi", "OpenAPI Document"),
            "create_private_user": ("private-create_user", "Create User"),
        }.items()
    )
