"""The Teams app package: ``deploy/teams`` with the bot's app id filled in, zipped for upload.

Teams admin center (or "Upload a custom app") takes a zip with ``manifest.json``, the two icons
and the localization files at its root. The manifest in ``deploy/teams`` names the bot
``{{MICROSOFT_APP_ID}}``; ``write_package`` puts the real id there.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

from core.errors import ConfigError

__all__ = ["APP_ID_PLACEHOLDER", "DEFAULT_SOURCE", "write_package"]

APP_ID_PLACEHOLDER = "{{MICROSOFT_APP_ID}}"
DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "deploy" / "teams"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_VERSION = re.compile(r"^\d{1,5}\.\d{1,5}\.\d{1,5}$")
_ZIP_TIME = (2025, 1, 1, 0, 0, 0)  # fixed, so the same inputs give the same bytes


def _files(manifest: dict[str, Any]) -> list[str]:
    """The files a manifest refers to: icons and localization files."""
    icons = manifest.get("icons", {})
    names = [icons.get("color"), icons.get("outline")]
    names += [
        lang.get("file") for lang in manifest.get("localizationInfo", {}).get("additionalLanguages", [])
    ]
    return [name for name in names if isinstance(name, str)]


def write_package(
    out: Path,
    *,
    app_id: str,
    version: str | None = None,
    developer: str | None = None,
    website_url: str | None = None,
    privacy_url: str | None = None,
    terms_url: str | None = None,
    source: Path = DEFAULT_SOURCE,
) -> Path:
    """Write the upload zip and return its path.

    Args:
        out: the zip to write (a name ending in .zip), or else a directory to write
            ``dari-teams-<version>.zip`` in (created when missing).
        app_id: the bot's Microsoft App ID (a GUID); also used as the Teams app id.
        version: the app version (x.y.z); Teams needs a higher one for every update.
        developer: the publisher name shown in Teams.
        website_url: the publisher's website (https).
        privacy_url: the privacy statement (https).
        terms_url: the terms of use (https).
        source: the folder with ``manifest.json``, the icons and the localization files.

    Raises:
        ConfigError: a value Teams would refuse, or a file missing from ``source``.
    """
    if not _GUID.match(app_id):
        raise ConfigError(f"the app id must be a GUID, not {app_id!r}", source="MicrosoftAppId")
    if version is not None and not _VERSION.match(version):
        raise ConfigError(f"the version must look like 1.0.0, not {version!r}", source="version")
    urls = {"websiteUrl": website_url, "privacyUrl": privacy_url, "termsOfUseUrl": terms_url}
    for field, url in urls.items():
        if url is not None and not url.startswith("https://"):
            raise ConfigError(f"{field} must be an https URL, not {url!r}", source=field)
    template = source / "manifest.json"
    if not template.is_file():
        raise ConfigError("no manifest.json in the Teams package folder", source=str(source))
    manifest: dict[str, Any] = json.loads(
        template.read_text(encoding="utf-8").replace(APP_ID_PLACEHOLDER, app_id.lower())
    )
    if version is not None:
        manifest["version"] = version
    if developer is not None:
        manifest["developer"]["name"] = developer
    manifest["developer"].update({field: url for field, url in urls.items() if url is not None})
    missing = [name for name in _files(manifest) if not (source / name).is_file()]
    if missing:
        raise ConfigError(f"the Teams package folder lacks {', '.join(missing)}", source=str(source))

    target = out if out.suffix.lower() == ".zip" else out / f"dari-teams-{manifest['version']}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        entries = [("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"))]
        entries += [(name, (source / name).read_bytes()) for name in _files(manifest)]
        for name, data in entries:
            archive.writestr(zipfile.ZipInfo(name, date_time=_ZIP_TIME), data, zipfile.ZIP_DEFLATED)
    return target
