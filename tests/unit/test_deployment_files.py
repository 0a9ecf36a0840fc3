"""The deployment files agree with the code and the README (no Docker engine needed).

A renamed setting, a changed port or a different start command must fail here, not at 3 a.m.
in a container that starts with the wrong configuration.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
import yaml

from aura_agent.config import Settings, load_settings, parse_dotenv
from aura_agent.config.providers import PROVIDERS
from aura_agent.config.settings import DERIVED_FIELDS

ROOT = Path(__file__).resolve().parents[2]
# Derived fields are filled in by load_settings, never read from the environment; a provider's
# key and URL variables are named by its row in the provider table.
SETTING_NAMES = {
    field.encode_name for field in msgspec.structs.fields(Settings)
} - DERIVED_FIELDS | {
    name for spec in PROVIDERS for name in (spec.key_variable, spec.url_variable) if name
}
# Read by the CLI (uvicorn workers) rather than by `Settings`.
EXTRA_VARIABLES = {"WEB_CONCURRENCY"}
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what a container must bind for a published port


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends in a line continuation"
    pairs = []
    for line in lines:
        instruction, _, arguments = line.partition(" ")
        pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the image that is shipped (after the last FROM)."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    """Variables set by `ENV KEY=VALUE ...` in a stage."""
    values: dict[str, str] = {}
    for name, arguments in stage:
        if name == "ENV":
            for item in shlex.split(arguments):
                key, sep, value = item.partition("=")
                assert sep, f"use the ENV KEY=VALUE form: {arguments}"
                values[key] = value
    return values


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def app_environment() -> dict[str, str]:
    environment = compose()["services"]["app"]["environment"]
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {str(key): str(value) for key, value in environment.items()}


def readme() -> str:
    return (ROOT / "README.md").read_text()


def readme_section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme(), re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def readme_run_command() -> list[str]:
    """The command of the first bash block of the Quick start, without the `uv run` wrapper."""
    block = re.search(r"```bash\n(.*?)```", readme_section("Quick start"), re.S)
    assert block, "the Quick start has no ```bash block"
    line = block.group(1).splitlines()[0]
    words = shlex.split(line, comments=True)
    assert words[:2] == ["uv", "run"], line
    return words[2:]


def env_example() -> dict[str, str]:
    return parse_dotenv((ROOT / ".env.example").read_text())


def test_the_image_runs_the_readme_command() -> None:
    cmd = [arguments for name, arguments in final_stage() if name == "CMD"]
    assert len(cmd) == 1
    assert json.loads(cmd[0]) == readme_run_command() == ["aura-agent", "serve"]
    assert not any(name == "ENTRYPOINT" for name, _ in final_stage())
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "aura-agent" in scripts
    assert "command" not in compose()["services"]["app"]
    assert "entrypoint" not in compose()["services"]["app"]


def test_the_published_port_is_the_port_the_app_listens_on() -> None:
    ports = compose()["services"]["app"]["ports"]
    assert len(ports) == 1
    published, _, container_port = str(ports[0]).rpartition(":")
    listen_port = app_environment().get("PORT", env_of(final_stage())["PORT"])
    exposed = [arguments for name, arguments in final_stage() if name == "EXPOSE"]
    assert published.rpartition(":")[2] == container_port == listen_port
    assert exposed == [listen_port]
    assert env_of(final_stage())["PORT"] == listen_port


def test_the_app_listens_beyond_loopback_in_its_container() -> None:
    assert env_of(final_stage())["HOST"] == ALL_INTERFACES
    assert app_environment()["HOST"] == ALL_INTERFACES


def test_every_variable_in_the_deployment_files_is_a_real_setting() -> None:
    image_env = {
        name for name in env_of(final_stage()) if name != "PATH" and not name.startswith("PYTHON")
    }
    named = set(app_environment()) | image_env
    known = (SETTING_NAMES & set(env_example())) | EXTRA_VARIABLES
    assert named, "no environment found"
    assert named <= known, f"not settings: {sorted(named - known)}"


def test_the_compose_environment_is_a_valid_configuration() -> None:
    environment = app_environment()
    settings = load_settings(environment, env_file=None)

    assert settings.session_store == "redis"
    redis_host = urlsplit(settings.redis_url).hostname
    assert redis_host in compose()["services"], "REDIS_URL must name the Redis service"


def test_the_app_waits_for_a_healthy_redis_and_reads_an_optional_env_file() -> None:
    services = compose()["services"]
    app, redis = services["app"], services["redis"]
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"
    assert app["env_file"] == [{"path": ".env", "required": False}]
    assert app["restart"] == "unless-stopped"
    assert redis["image"].startswith("redis:7")
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "ports" not in redis, "Redis must not be reachable from outside the compose network"


def test_the_image_installs_from_the_lock_and_runs_as_non_root() -> None:
    instructions = dockerfile_instructions()
    stages = [arguments for name, arguments in instructions if name == "FROM"]
    assert stages == ["python:3.11-slim AS builder", "python:3.11-slim"]
    runs = " ".join(arguments for name, arguments in instructions if name == "RUN")
    assert re.search(r"uv sync --locked --no-dev --no-editable(\s|$)", runs)
    assert "pip install" in runs
    assert any(
        name == "COPY" and "--from=builder" in arguments and "/app/.venv" in arguments
        for name, arguments in final_stage()
    )
    users = [arguments for name, arguments in final_stage() if name == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert env_of(final_stage())["PATH"].startswith("/app/.venv/bin:")


def test_the_image_uses_the_same_uv_as_ci() -> None:
    pinned = re.search(r"uv==([\d.]+)", (ROOT / "Dockerfile").read_text())
    ci = re.search(r'UV_VERSION="([\d.]+)"', (ROOT / ".ci" / "run").read_text())
    assert pinned
    assert ci
    assert pinned.group(1) == ci.group(1)


def test_the_healthcheck_polls_health_without_curl() -> None:
    checks = [arguments for name, arguments in final_stage() if name == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "urllib.request" in checks[0]
    assert "/health" in checks[0]
    assert "curl" not in checks[0]


def test_the_secrets_file_stays_out_of_the_build_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored
    assert ".venv" in ignored


def test_every_setting_is_in_env_example() -> None:
    example = set(env_example())
    assert example >= SETTING_NAMES, f"missing: {sorted(SETTING_NAMES - example)}"
    assert example <= SETTING_NAMES | EXTRA_VARIABLES, f"unknown: {sorted(example - SETTING_NAMES)}"


def test_every_setting_is_in_the_readme_settings_table() -> None:
    rows = [line for line in readme_section("Configuration").splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([A-Z0-9_]+)`", row.split("|")[1])}
    assert documented >= SETTING_NAMES, f"missing: {sorted(SETTING_NAMES - documented)}"


def test_env_example_is_a_valid_configuration() -> None:
    settings = load_settings(env_example(), env_file=None)

    # Copied unedited, it must give the README's first run: development, no keys, memory store.
    assert settings.aura_env == "development"
    assert settings.internal_api_key is None
    assert settings.resolved_provider == "demo"
    assert settings.routes.secrets == ()
    assert settings.session_store == "memory"


@pytest.mark.parametrize(
    "endpoint", ["GET /sessions/{session_id}", "DELETE /sessions/{session_id}"]
)
def test_the_session_endpoints_are_documented(endpoint: str) -> None:
    assert f"### `{endpoint}`" in readme_section("API")
