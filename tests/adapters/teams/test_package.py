"""The Teams app package: the manifest, the icons and the upload zip."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from adapters.teams.package import APP_ID_PLACEHOLDER, DEFAULT_SOURCE, write_package
from core.errors import ConfigError
from core.messages import say

APP_ID = "C9E8C047-2A74-40A2-B28A-B162D5F5327C"


def png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGBA rows of an 8-bit RGBA PNG without filters (as the shipped icons are)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, width, height = 8, b"", 0, 0
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color_type = struct.unpack(">IIBB", body[:10])
            assert (depth, color_type) == (8, 6)
        if kind == b"IDAT":
            idat += body
        at += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 4 + 1
    return width, height, [raw[y * stride + 1 : (y + 1) * stride] for y in range(height)]


def test_the_zip_holds_the_manifest_with_the_app_id_and_every_file(tmp_path: Path) -> None:
    target = write_package(tmp_path / "dist", app_id=APP_ID, version="1.2.3")

    with zipfile.ZipFile(target) as archive:
        names = sorted(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    assert target == tmp_path / "dist" / "dari-teams-1.2.3.zip"
    assert names == ["color.png", "en-us.json", "manifest.json", "outline.png"]
    assert manifest["id"] == manifest["bots"][0]["botId"] == APP_ID.lower()
    assert APP_ID_PLACEHOLDER not in json.dumps(manifest)
    assert manifest["version"] == "1.2.3"
    assert manifest["bots"][0]["scopes"] == ["personal", "team", "groupChat"]


def test_the_manifest_speaks_korean_and_lists_the_engines_commands() -> None:
    manifest = json.loads((DEFAULT_SOURCE / "manifest.json").read_text(encoding="utf-8"))
    english = json.loads((DEFAULT_SOURCE / "en-us.json").read_text(encoding="utf-8"))
    help_text = say("help", lang="ko", name="다리")

    assert manifest["localizationInfo"]["defaultLanguageTag"] == "ko-kr"
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["description"]["short"]) <= 80
    for commands in manifest["bots"][0]["commandLists"]:
        titles = [c["title"] for c in commands["commands"]]
        assert titles == ["도움말", "초기화", "잊어줘"]
        assert all(title in help_text for title in titles), "titles the engine understands"
    english_titles = {v for k, v in english.items() if k.endswith(".title")}
    assert english_titles == {"/help", "/reset", "/forget"}
    assert all(key.split(".")[0].split("[")[0] in manifest for key in english if not key.startswith("$"))


def test_the_icons_have_the_sizes_teams_wants() -> None:
    width, height, rows = png((DEFAULT_SOURCE / "color.png").read_bytes())
    assert (width, height) == (192, 192)
    assert all(row[x * 4 + 3] == 255 for row in rows for x in range(width)), "the color icon is opaque"

    width, height, rows = png((DEFAULT_SOURCE / "outline.png").read_bytes())
    pixels = [row[x * 4 : x * 4 + 4] for row in rows for x in range(width)]
    assert (width, height) == (32, 32)
    assert all(p[:3] == b"\xff\xff\xff" for p in pixels), "the outline icon is white"
    assert any(p[3] == 0 for p in pixels) and any(p[3] == 255 for p in pixels), "on transparency"


def test_developer_details_can_be_set(tmp_path: Path) -> None:
    target = write_package(
        tmp_path / "out" / "app.zip",
        app_id=APP_ID,
        developer="다리 주식회사",
        website_url="https://dari.example.kr",
        privacy_url="https://dari.example.kr/privacy",
        terms_url="https://dari.example.kr/terms",
    )

    with zipfile.ZipFile(target) as archive:
        developer = json.loads(archive.read("manifest.json"))["developer"]
    assert developer == {
        "name": "다리 주식회사",
        "websiteUrl": "https://dari.example.kr",
        "privacyUrl": "https://dari.example.kr/privacy",
        "termsOfUseUrl": "https://dari.example.kr/terms",
    }


@pytest.mark.parametrize(
    ("kwargs", "source"),
    [
        ({"app_id": ""}, "MicrosoftAppId"),
        ({"app_id": "my-bot"}, "MicrosoftAppId"),
        ({"app_id": APP_ID, "version": "1.0"}, "version"),
        ({"app_id": APP_ID, "website_url": "http://dari.example.kr"}, "websiteUrl"),
    ],
)
def test_values_teams_would_refuse(tmp_path: Path, kwargs: dict[str, Any], source: str) -> None:
    with pytest.raises(ConfigError) as raised:
        write_package(tmp_path, **kwargs)

    assert raised.value.source == source
    assert list(tmp_path.iterdir()) == []


def test_a_missing_icon_is_reported(tmp_path: Path) -> None:
    source = tmp_path / "teams"
    source.mkdir()
    (source / "manifest.json").write_text((DEFAULT_SOURCE / "manifest.json").read_text(encoding="utf-8"))

    with pytest.raises(ConfigError, match=r"color\.png, outline\.png, en-us\.json"):
        write_package(tmp_path / "app.zip", app_id=APP_ID, source=source)
