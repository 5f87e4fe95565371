from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.persona import Persona, load_personas

MINIMAL = """
name = "다리"
greeting = "안녕하세요, 다리예요."
instructions = "당신은 사내 업무 도우미예요."
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def load_one(tmp_path: Path, extra: str) -> ConfigError:
    path = write(tmp_path, "default.toml", MINIMAL + extra)
    with pytest.raises(ConfigError) as caught:
        load_personas(tmp_path)
    assert caught.value.source == str(path)
    assert str(path) in str(caught.value)
    return caught.value


def test_minimal_file_gets_the_defaults(tmp_path: Path) -> None:
    write(tmp_path, "default.toml", MINIMAL)
    assert load_personas(tmp_path) == {
        "default": Persona(
            id="default",
            name="다리",
            speech_level="haeyo",
            language="ko",
            greeting="안녕하세요, 다리예요.",
            quick_replies=(),
            instructions="당신은 사내 업무 도우미예요.",
            model="",
            temperature=0.3,
            max_answer_tokens=1024,
            history_tokens=3000,
            history_turns=40,
            retention_days=30,
            summary_tokens=600,
            personal_memory=True,
        )
    }


def test_every_file_is_a_bot_keyed_by_its_stem(tmp_path: Path) -> None:
    write(tmp_path, "default.toml", MINIMAL)
    write(tmp_path, "hr-desk.toml", MINIMAL + 'speech_level = "hapsyo"\ntemperature = 1\n')
    write(tmp_path, "notes.txt", "not a bot")
    personas = load_personas(tmp_path)
    assert sorted(personas) == ["default", "hr-desk"]
    assert personas["hr-desk"].id == "hr-desk"
    assert personas["hr-desk"].speech_level == "hapsyo"
    assert personas["hr-desk"].temperature == 1.0


def test_the_repository_default_bot_loads() -> None:
    personas = load_personas(Path(__file__).resolve().parents[2] / "bots")
    default = personas["default"]
    assert default.name == "다리"
    assert default.speech_level == "haeyo"
    assert default.retention_days == 30


def test_decomposed_hangul_is_normalised_before_counting(tmp_path: Path) -> None:
    # 14 syllables saved as NFD are 40+ code points; the label must still pass and come out NFC.
    label = unicodedata.normalize("NFD", "가나다라마바사아자차카타파하")
    write(tmp_path, "default.toml", MINIMAL + f'quick_replies = ["{label}"]\n')
    (reply,) = load_personas(tmp_path)["default"].quick_replies
    assert reply == "가나다라마바사아자차카타파하"


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ('temperature = "0.3"\n', "temperature", "valid number"),
        ("history_turns = 2.0\n", "history_turns", "valid integer"),
        ("temperature = 2.5\n", "temperature", "less than or equal to 2"),
        ("history_tokens = 100\n", "history_tokens", "greater than or equal to 200"),
        ("history_turns = 201\n", "history_turns", "less than or equal to 200"),
        ("retention_days = 0\n", "retention_days", "greater than or equal to 1"),
        ("summary_tokens = 50\n", "summary_tokens", "greater than or equal to 100"),
        ("summary_tokens = 5000\n", "summary_tokens", "less than or equal to 4000"),
        ('personal_memory = "yes"\n', "personal_memory", "valid boolean"),
        ('speech_level = "banmal"\n', "speech_level", "'haeyo' or 'hapsyo'"),
        ('language = "ja"\n', "language", "'ko' or 'en'"),
        (
            'quick_replies = ["메일", "요약", "이 버튼 이름은 열네 자를 넘어요"]\n',
            "quick_replies.2",
            "14 characters",
        ),
        ('quick_replies = ["메일", "  "]\n', "quick_replies.1", "at least 1 character"),
        (
            "quick_replies = [" + ", ".join(f'"버튼 {n}"' for n in range(11)) + "]\n",
            "quick_replies",
            "10 items",
        ),
        ('colour = "blue"\n', "colour", "Extra inputs are not permitted"),
    ],
)
def test_invalid_values_name_file_and_field(tmp_path: Path, extra: str, field: str, words: str) -> None:
    error = load_one(tmp_path, extra)
    assert error.field == field
    assert f"{field}: " in str(error)
    assert words in str(error)


def test_empty_name_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, "default.toml", MINIMAL.replace('name = "다리"', 'name = "   "'))
    with pytest.raises(ConfigError) as caught:
        load_personas(tmp_path)
    assert caught.value.field == "name"


def test_missing_required_field(tmp_path: Path) -> None:
    write(tmp_path, "default.toml", 'name = "다리"\ngreeting = "안녕하세요"\n')
    with pytest.raises(ConfigError) as caught:
        load_personas(tmp_path)
    assert caught.value.field == "instructions"
    assert "instructions: Field required" in str(caught.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, "default.toml", MINIMAL)
    broken = write(tmp_path, "sales.toml", 'name = "영업 도우미\n')
    with pytest.raises(ConfigError, match="invalid TOML") as caught:
        load_personas(tmp_path)
    assert caught.value.source == str(broken)
    assert str(broken) in str(caught.value)
    assert caught.value.field == ""


def test_missing_default_bot(tmp_path: Path) -> None:
    write(tmp_path, "formal.toml", MINIMAL)
    with pytest.raises(ConfigError, match=r"default\.toml") as caught:
        load_personas(tmp_path)
    assert caught.value.source == str(tmp_path / "default.toml")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_personas(tmp_path / "nowhere")


def test_file_name_must_be_a_usable_id(tmp_path: Path) -> None:
    write(tmp_path, "default.toml", MINIMAL)
    write(tmp_path, "My Bot.toml", MINIMAL)
    with pytest.raises(ConfigError, match="bot id"):
        load_personas(tmp_path)


def test_non_utf8_file(tmp_path: Path) -> None:
    write(tmp_path, "default.toml", MINIMAL)
    (tmp_path / "legacy.toml").write_bytes('name = "다리"\n'.encode("cp949"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load_personas(tmp_path)
