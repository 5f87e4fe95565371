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


async def _remember(path: Path) -> None:
    from core.engine import Engine
    from core.memory import EmbeddedStore
    from core.persona import load_personas
    from core.types import ConversationKey, Inbound
    from tests.support.fakes import ScriptedLLM

    store = await EmbeddedStore.open(path=path)
    engine = Engine(
        store=store, llm=ScriptedLLM("네"), personas=load_personas(Path("bots")), default_model="m"
    )
    key = ConversationKey(platform="kakao", tenant="bot1", conversation="user-7")
    await engine.respond(Inbound(key=key, message_id="m1", user_id="user-7", text="제 사번은 K-2041이에요"))
    await engine.close()
    await store.close()


def test_export_user_then_forget_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import json

    for name in ("REDIS_URL", "DARI_DATA_DIR", "DARI_BOTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DARI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DARI_BOTS_DIR", str(Path("bots").resolve()))
    asyncio.run(_remember(tmp_path / "dari.sqlite3"))
    monkeypatch.chdir(tmp_path)
    who = ["--platform", "kakao", "--tenant", "bot1", "--user", "user-7"]

    assert main(["export-user", *who]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert "K-2041" in json.dumps(exported, ensure_ascii=False)

    assert main(["forget-user", *who]) == 0
    assert "nothing of this user is left" in capsys.readouterr().out

    assert main(["export-user", *who, "--output", str(tmp_path / "after.json")]) == 0
    after = (tmp_path / "after.json").read_text(encoding="utf-8")
    assert "K-2041" not in after
