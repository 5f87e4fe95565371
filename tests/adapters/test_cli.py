"""The dari command line."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from adapters.cli import build_parser, main


def test_serve_defaults_to_all_interfaces_on_3978() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("0.0.0.0", 3978)
    args = build_parser().parse_args(["serve", "--host", "127.0.0.1", "--port", "8080"])
    assert (args.host, args.port) == ("127.0.0.1", 8080)


def test_teams_package_writes_the_upload_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app_id = "11111111-2222-3333-4444-555555555555"
    assert main(["teams-package", "--app-id", app_id, "--out", str(tmp_path), "--version", "1.2.3"]) == 0
    written = Path(capsys.readouterr().out.strip())
    with zipfile.ZipFile(written) as package:
        assert {"manifest.json", "color.png", "outline.png"} <= set(package.namelist())
        assert app_id in package.read("manifest.json").decode()


def test_teams_package_refuses_a_bad_app_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["teams-package", "--app-id", "not-a-guid", "--out", str(tmp_path)]) == 2
    assert "GUID" in capsys.readouterr().err
