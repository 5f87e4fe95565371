"""deploy/compose.yaml against the Compose Specification schema, then its shape."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema

from tests.deploy.files import DEPLOY, documents


def compose() -> dict[str, Any]:
    (doc,) = documents(DEPLOY / "compose.yaml")
    return doc


def test_matches_the_compose_specification() -> None:
    # check-jsonschema ships the Compose Specification's schema: no network needed.
    schema = json.loads(
        resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    jsonschema.Draft202012Validator(schema).validate(compose())


def test_dari_builds_the_image_and_waits_for_a_healthy_redis() -> None:
    dari = compose()["services"]["dari"]
    assert dari["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / ".." / dari["build"]["dockerfile"]).is_file()
    assert dari["depends_on"]["redis"]["condition"] == "service_healthy"
    assert dari["env_file"] == ".env"
    assert dari["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert dari["read_only"] is True and "/tmp" in dari["tmpfs"]
    assert any(str(port).endswith(":3978") for port in dari["ports"])


def test_every_service_has_a_healthcheck() -> None:
    services = compose()["services"]
    assert "/healthz" in " ".join(services["dari"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_redis_persists_with_aof_on_a_named_volume() -> None:
    doc = compose()
    redis = doc["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "redis-data:/data" in redis["volumes"]
    assert set(doc["volumes"]) >= {"redis-data", "dari-data"}


def test_stop_grace_covers_the_drain() -> None:
    seconds = int(compose()["services"]["dari"]["stop_grace_period"].rstrip("s"))
    assert seconds >= 30
