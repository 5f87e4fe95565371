"""env.example lists every setting, and no file in deploy/ names a setting that does not exist."""

from __future__ import annotations

import re

from tests.deploy.files import DEPLOY, K8S, documents, primary_setting_names, setting_names

ENV_LINE = re.compile(r"^#?\s?([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)


def env_example_names() -> list[str]:
    return ENV_LINE.findall((DEPLOY / "env.example").read_text(encoding="utf-8"))


def test_env_example_lists_every_setting_once() -> None:
    listed = env_example_names()
    missing = {field: name for field, name in primary_setting_names().items() if name not in listed}
    assert missing == {}, "add these to deploy/env.example with a one-line explanation"
    assert len(listed) == len(set(listed))


def test_env_example_names_only_real_settings_and_explains_each() -> None:
    assert set(env_example_names()) <= setting_names()
    lines = (DEPLOY / "env.example").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if ENV_LINE.match(line):
            above = lines[index - 1]
            assert above.startswith("# ") and not ENV_LINE.match(above), f"no explanation above {line!r}"


def test_env_example_sets_nothing_by_default() -> None:
    # An empty value counts as set (SecretStr("") turns a door on), so every line stays commented.
    for line in (DEPLOY / "env.example").read_text(encoding="utf-8").splitlines():
        assert not line or line.startswith("#"), line


def test_kubernetes_config_and_secret_keys_are_settings() -> None:
    names = setting_names()
    for path in (K8S / "configmap.yaml", K8S / "secret.example.yaml"):
        for doc in documents(path):
            keys = set(doc.get("data", {})) | set(doc.get("stringData", {}))
            assert keys and keys <= names, (path.name, keys - names)


def test_compose_environment_names_are_settings() -> None:
    (compose,) = documents(DEPLOY / "compose.yaml")
    assert set(compose["services"]["dari"]["environment"]) <= setting_names()
