"""devhost's reading of local.settings.json, host.json and the app settings it honours."""

from __future__ import annotations

import json
import logging
import os

import pytest

from devhost.errors import DevhostError
from devhost.hostjson import DEFAULT_FUNCTION_TIMEOUT_SECONDS, read_host_json, read_route_prefix
from devhost.settings import (
    UnresolvedSetting,
    apply_local_settings,
    is_disabled,
    resolve_references,
)
from tests.support.devhost_process import DevhostProcess


def test_local_settings_fill_the_environment_without_overriding_it(tmp_path):
    path = tmp_path / "local.settings.json"
    values = {"FROM_FILE": "file", "PRESET": "file", "COUNT": 3, "FLAG": True, "NOTHING": None}
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    environ = {"PRESET": "environment"}
    apply_local_settings(path, environ)
    assert environ == {"FROM_FILE": "file", "PRESET": "environment", "COUNT": "3", "FLAG": "true"}


def test_a_missing_local_settings_file_is_fine(tmp_path, caplog):
    environ: dict[str, str] = {}
    with caplog.at_level("INFO", logger="devhost"):
        apply_local_settings(tmp_path / "absent.json", environ)
    assert environ == {}
    assert "not found" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"Values": {', "is not valid JSON"),
        ('{"Values": []}', "'Values' must be a JSON object"),
        ('{"Values": {"A": {"nested": 1}}}', "value of 'A' must be a string"),
        ('{"IsEncrypted": true, "Values": {}}', "is encrypted"),
    ],
)
def test_a_malformed_local_settings_file_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "local.settings.json"
    path.write_text(text)
    with pytest.raises(DevhostError, match=message):
        apply_local_settings(path, {})


@pytest.mark.parametrize(
    ("document", "prefix"),
    [
        ({"extensions": {"http": {"routePrefix": ""}}}, ""),
        ({"extensions": {"http": {"routePrefix": "/custom/"}}}, "custom"),
        ({"extensions": {"http": {}}}, "api"),
        ({"version": "2.0"}, "api"),
    ],
)
def test_route_prefix_comes_from_host_json_with_the_hosts_default(tmp_path, document, prefix):
    path = tmp_path / "host.json"
    path.write_text(json.dumps(document))
    assert read_route_prefix(path) == prefix


def test_a_missing_host_json_uses_the_default_prefix(tmp_path):
    assert read_route_prefix(tmp_path / "host.json") == "api"


def test_a_malformed_host_json_is_a_clear_error(tmp_path):
    path = tmp_path / "host.json"
    path.write_text("{")
    with pytest.raises(DevhostError, match="is not valid JSON"):
        read_route_prefix(path)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("00:01:00", 60.0),
        ("00:00:01.5", 1.5),
        ("1.02:03:04", 93784.0),
        ("-1", None),
    ],
)
def test_function_timeout_is_a_timespan_or_unbounded(tmp_path, value, seconds):
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"version": "2.0", "functionTimeout": value}))
    assert read_host_json(path).function_timeout == seconds


def test_without_function_timeout_the_premium_plans_default_applies(tmp_path):
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"version": "2.0"}))
    assert read_host_json(path).function_timeout == DEFAULT_FUNCTION_TIMEOUT_SECONDS == 1800
    assert read_host_json(tmp_path / "absent.json").function_timeout == 1800


@pytest.mark.parametrize("value", ["5m", "00:61:00", "00:00:00", 300, ""])
def test_a_malformed_function_timeout_is_a_clear_error(tmp_path, value):
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"version": "2.0", "functionTimeout": value}))
    with pytest.raises(DevhostError, match="functionTimeout"):
        read_host_json(path)


def test_log_levels_pick_the_most_specific_category_then_the_default(tmp_path):
    path = tmp_path / "host.json"
    levels = {"default": "Warning", "Function": "Information", "Function.quiet": "Error"}
    path.write_text(json.dumps({"logging": {"logLevel": levels}}))
    config = read_host_json(path, environ={}).log_levels
    assert config.level_for("Function.read_items") == logging.INFO
    assert config.level_for("function.QUIET") == logging.ERROR
    assert config.level_for("Function.quieter") == logging.INFO  # a prefix is a whole segment
    assert config.level_for("Host.Results") == logging.WARNING
    assert (
        read_host_json(tmp_path / "absent.json", environ={}).log_levels.level_for("Function.x")
        == logging.INFO
    )


def test_app_settings_override_host_json_as_the_host_reads_them(tmp_path):
    path = tmp_path / "host.json"
    document = {
        "functionTimeout": "00:01:00",
        "logging": {"logLevel": {"Function": "Information"}},
        "extensions": {"http": {"routePrefix": ""}},
    }
    path.write_text(json.dumps(document))
    environ = {
        "AzureFunctionsJobHost__logging__logLevel__Function": "Warning",
        "AZUREFUNCTIONSJOBHOST__FUNCTIONTIMEOUT": "00:00:30",
        "AzureFunctionsJobHost__extensions__http__routePrefix": "v2",
        "AzureWebJobs__other__Disabled": "true",
    }
    config = read_host_json(path, environ=environ)
    assert config.log_levels.level_for("Function.read_items") == logging.WARNING
    assert config.function_timeout == 30
    assert config.route_prefix == "v2"
    absent = read_host_json(tmp_path / "absent.json", environ=environ)
    assert absent.log_levels.level_for("Function.read_items") == logging.WARNING


def test_an_unknown_log_level_is_a_clear_error(tmp_path):
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"logging": {"logLevel": {"Function": "Quiet"}}}))
    with pytest.raises(DevhostError, match=r"logging\.logLevel\.Function is 'Quiet'"):
        read_host_json(path, environ={})


def test_binding_expressions_resolve_from_app_settings():
    environ = {"SCHEDULE": "*/5 * * * * *", "DAY": "1"}
    assert resolve_references("%SCHEDULE%", environ) == "*/5 * * * * *"
    assert resolve_references("0 0 0 %DAY% * *", environ) == "0 0 0 1 * *"
    with pytest.raises(UnresolvedSetting, match="'%MISSING%' does not resolve to a value"):
        resolve_references("%MISSING%", environ)


@pytest.mark.parametrize(
    ("environ", "disabled"),
    [
        ({"AzureWebJobs.tick.Disabled": "true"}, True),
        ({"AzureWebJobs__tick__Disabled": "1"}, True),
        ({"AZUREWEBJOBS.TICK.DISABLED": "True"}, True),
        ({"AzureWebJobs.tick.Disabled": "false"}, False),
        ({"AzureWebJobs.other.Disabled": "true"}, False),
        ({}, False),
    ],
)
def test_functions_are_disabled_by_app_setting(environ, disabled):
    assert is_disabled("tick", environ) is disabled


@pytest.mark.parametrize(
    ("value", "threads", "warning"),
    [
        ("3", 3, None),
        ("0", min(32, (os.cpu_count() or 1) + 4), "must be set to a value between 1 and"),
        ("many", min(32, (os.cpu_count() or 1) + 4), "must be an integer"),
    ],
)
def test_the_runtime_sizes_its_thread_pool_from_the_app_setting(value, threads, warning):
    env = {"PYTHON_THREADPOOL_THREAD_COUNT": value, "TICK_SCHEDULE": "0 0 0 1 1 *"}
    with DevhostProcess(env=env, script="tests/apps/devhost_sample.py") as server:
        output = server.output()
    assert f"Thread pool: {threads} worker thread(s)" in output
    if warning:
        assert f"PYTHON_THREADPOOL_THREAD_COUNT {warning}" in output
