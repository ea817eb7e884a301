"""The generated OpenAPI document against the contract, and schemathesis against the server."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SUPERUSER, SUPERUSER_PASSWORD, app_env, create_superuser, migrate
from tests.support.services import temporary_database
from tests.support.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
# The project's copy of the contract; the team's shared original, where it sits beside the
# checkout (or at STRATUS_CONTRACT), must not have moved on from it.
CONTRACT_PATH = ROOT / "contracts" / "api-v1.openapi.json"
SHARED_CONTRACT_PATH = Path(
    os.environ.get("STRATUS_CONTRACT", ROOT.parent / "shared" / "contracts" / "api-v1.openapi.json")
)
METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture(scope="module")
def contract():
    return json.loads(CONTRACT_PATH.read_text())


def test_the_projects_contract_copy_matches_the_shared_original():
    if not SHARED_CONTRACT_PATH.exists():
        pytest.skip(f"no shared contract at {SHARED_CONTRACT_PATH} to compare the copy with")
    assert json.loads(SHARED_CONTRACT_PATH.read_text()) == json.loads(CONTRACT_PATH.read_text())


@pytest.fixture(scope="module")
def document(api):
    response = api.request("GET", "/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def _types(schema: dict[str, Any]) -> set[tuple[str, str | None]]:
    """The (type, format) alternatives a schema allows."""
    if "anyOf" in schema:
        return set().union(*(_types(s) for s in schema["anyOf"]))
    if "$ref" in schema:
        return {("$ref", schema["$ref"].rsplit("/", 1)[1])}
    return {(schema.get("type", "any"), schema.get("format"))}


def _refines(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Every value ours allows, theirs allows: same types, formats kept, added ones allowed."""
    allowed = _types(theirs)
    return all(
        (kind, fmt) in allowed or (kind, None) in allowed or ("any", None) in allowed
        for kind, fmt in _types(ours)
    )


def _operations(doc):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_every_contract_operation_exists_with_its_operation_id(contract, document):
    for path, method, operation in _operations(contract):
        assert path in document["paths"], path
        ours = document["paths"][path].get(method)
        assert ours is not None, f"{method.upper()} {path}"
        assert ours["operationId"] == operation["operationId"]
        assert ("security" in ours) == ("security" in operation), f"{method} {path}"


def test_parameters_bodies_and_responses_match(contract, document):
    for path, method, operation in _operations(contract):
        ours = document["paths"][path][method]
        theirs_params = {(p["name"], p["in"]): p for p in operation.get("parameters", [])}
        our_params = {(p["name"], p["in"]): p for p in ours.get("parameters", [])}
        assert set(theirs_params) == set(our_params), f"{method} {path}"
        for key, param in theirs_params.items():
            assert our_params[key]["required"] == param["required"], key
            assert _types(our_params[key]["schema"]) == _types(param["schema"]), key
        if "requestBody" in operation:
            theirs_body = operation["requestBody"]["content"]
            ours_body = ours["requestBody"]["content"]
            assert set(theirs_body) == set(ours_body), f"{method} {path}"
            for media, content in theirs_body.items():
                assert _types(ours_body[media]["schema"]) == _types(content["schema"])
        for status, response in operation["responses"].items():
            assert status in ours["responses"], f"{method} {path} {status}"
            for media, content in response.get("content", {}).items():
                our_content = ours["responses"][status]["content"][media]
                assert _types(our_content["schema"]) == _types(content["schema"]), (
                    f"{method} {path} {status}"
                )


def test_component_schemas_are_compatible(contract, document):
    ours = document["components"]["schemas"]
    for name, schema in contract["components"]["schemas"].items():
        assert name in ours, name
        mine = ours[name]
        assert set(mine.get("required", [])) == set(schema.get("required", [])), name
        assert list(mine["properties"]) == list(schema["properties"]), name
        for prop, prop_schema in schema["properties"].items():
            assert _refines(mine["properties"][prop], prop_schema), f"{name}.{prop}"
            for bound in ("maxLength", "minLength", "default"):
                if bound in prop_schema:
                    assert mine["properties"][prop].get(bound) == prop_schema[bound], (
                        f"{name}.{prop} {bound}"
                    )


def test_the_document_also_covers_probes_and_cache_routes(document):
    assert "/healthz" in document["paths"]
    assert "/readyz" in document["paths"]
    assert document["paths"]["/api/v1/items/"]["get"]["security"]


@pytest.fixture(scope="module")
def fuzz_target(redis_url):
    """A server of its own, with a mail sink: the fuzzer creates, changes and deletes at will."""
    from tests.support.devhost_process import DevhostProcess

    with temporary_database() as url, SmtpSink() as mail:
        migrate(url)
        env = app_env(url, redis_url, **mail.app_settings())
        create_superuser(env)
        with DevhostProcess(env=env) as server:
            token = httpx.post(
                f"{server.url}/api/v1/login/access-token",
                data={"username": SUPERUSER, "password": SUPERUSER_PASSWORD},
            ).json()["access_token"]
            yield server, token


def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzz_target, tmp_path):
    server, token = fuzz_target
    schemathesis = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{server.url}/api/v1/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,"
            "content_type_conformance",
            "--max-examples",
            "12",
            "--seed",
            "20261126",
            "--header",
            f"Authorization: Bearer {token}",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            "--workers",
            "2",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Unhandled error" not in server.output()
