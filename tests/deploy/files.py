"""What the deploy/ tests read: the files, the YAML documents in them, and the setting names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices

from adapters.settings import Settings

__all__ = ["DEPLOY", "K8S", "ROOT", "documents", "primary_setting_names", "setting_names"]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in a file (safe loader: no tags, no code)."""
    with path.open(encoding="utf-8") as file:
        return [doc for doc in yaml.safe_load_all(file) if doc]


def _aliases(alias: object) -> list[str]:
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return [alias] if isinstance(alias, str) else []


def setting_names() -> set[str]:
    """Every environment name any setting answers to."""
    return {name for field in Settings.model_fields.values() for name in _aliases(field.validation_alias)}


def primary_setting_names() -> dict[str, str]:
    """Setting field -> the environment name documented for it (its first alias)."""
    names = {}
    for field_name, field in Settings.model_fields.items():
        aliases = _aliases(field.validation_alias)
        names[field_name] = aliases[0] if aliases else field_name.upper()
    return names
