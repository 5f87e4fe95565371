"""Every sentence dari says on its own (not the LLM's answers), per language and speech level.

Korean is the default, in 해요체 or 하십시오체 as the bot chooses; English where the user wrote
in English. Keeping them here keeps the wording consistent and testable.
"""

from __future__ import annotations

import re
from typing import Literal

from core.persona import SpeechLevel

__all__ = ["Lang", "MessageId", "detect_language", "duration", "say"]

Lang = Literal["ko", "en"]
MessageId = Literal[
    "help",
    "reset_done",
    "forget_done",
    "not_configured",
    "llm_failed",
    "llm_busy",
    "llm_failed_midway",
    "rate_limited_user",
    "rate_limited_tenant",
    "empty_message",
    "kakao_waiting",
    "kakao_still_working",
    "kakao_pending_intro",
    "kakao_too_long",
    "kakao_next_pending",
    "truncated",
    "remember_done",
    "remember_duplicate",
    "remember_empty",
    "remember_full",
    "remember_too_long",
    "memory_list",
    "memory_empty",
    "memory_deleted",
    "memory_delete_usage",
    "memory_no_such",
    "memory_private_only",
    "memory_off",
]

_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
_LATIN = re.compile(r"[A-Za-z]")

_COMMANDS_KO = (
    "• 초기화 (/reset): 지금 대화를 처음부터 다시 시작해요\n"
    "• 기억해 줘: 내용 (/remember 내용): 1:1 대화에서 기억할 내용을 알려 주세요 (예: 기억해 줘: 저는 재무팀이에요)\n"
    "• 기억 목록 (/memory): 기억하고 있는 내용을 번호와 함께 보여 드려요\n"
    "• 기억 삭제 번호 (/memory delete 번호): 그 번호의 내용을 지워요\n"
    "• 잊어줘 (/forget): 저장된 내 대화 기록과 기억한 내용을 모두 지워요\n"
    "• 도움말 (/help): 이 안내를 다시 보여 드려요"
)
_COMMANDS_KO_FORMAL = (
    "• 초기화 (/reset): 지금 대화를 처음부터 다시 시작합니다\n"
    "• 기억해 줘: 내용 (/remember 내용): 1:1 대화에서 기억할 내용을 알려 주십시오 (예: 기억해 줘: 저는 재무팀입니다)\n"
    "• 기억 목록 (/memory): 기억하고 있는 내용을 번호와 함께 표시합니다\n"
    "• 기억 삭제 번호 (/memory delete 번호): 그 번호의 내용을 삭제합니다\n"
    "• 잊어줘 (/forget): 저장된 대화 기록과 기억한 내용을 모두 삭제합니다\n"
    "• 도움말 (/help): 이 안내를 다시 표시합니다"
)

_HAEYO: dict[MessageId, str] = {
    "help": "저는 {name}{copula} 업무 질문, 문서 초안, 요약, 번역을 도와드려요.\n\n명령어\n" + _COMMANDS_KO,
    "reset_done": "대화를 초기화했어요. 새로운 주제로 편하게 말씀해 주세요.",
    "forget_done": "저장된 대화 기록과 기억한 내용을 모두 지웠어요. 다음 대화는 처음부터 시작해요.",
    "not_configured": "아직 AI 모델이 연결되지 않아 답변을 드릴 수 없어요. 관리자에게 설정을 요청해 주세요.",
    "llm_failed": "죄송해요, 지금은 답변을 드리기 어려워요. 잠시 후 다시 말씀해 주세요.",
    "llm_busy": "죄송해요, 지금 요청이 많아 답변이 어려워요. {seconds}초쯤 뒤에 다시 말씀해 주세요.",
    "llm_failed_midway": "(죄송해요, 답변을 끝까지 드리지 못했어요. 다시 질문해 주시면 이어서 도와드릴게요.)",
    "rate_limited_user": "메시지를 너무 빨리 보내고 있어요. {wait} 뒤에 다시 보내 주세요.",
    "rate_limited_tenant": "지금 요청이 한꺼번에 몰려 잠시 쉬어 가고 있어요. {wait} 뒤에 다시 보내 주세요.",
    "empty_message": "메시지 내용을 확인하지 못했어요. 궁금한 점을 글로 보내 주세요.",
    "kakao_waiting": "답변을 준비하고 있어요. 잠시만 기다려 주세요!",
    "kakao_still_working": "답변이 조금 길어지고 있어요. 잠시 후 아무 메시지나 보내 주시면 준비된 답변부터 알려 드릴게요.",
    "kakao_pending_intro": "앞서 물어보신 내용의 답변이에요.",
    "kakao_too_long": "답변 준비가 길어지고 있어요. 잠시 후 아무 메시지나 보내 주시면 준비된 답변을 알려 드릴게요.",
    "kakao_next_pending": "방금 보내 주신 메시지의 답변은 아직 준비 중이에요. 잠시 후 다시 메시지를 보내 주세요.",
    "truncated": "(답변이 길어 일부만 보여 드렸어요.)",
    "remember_done": "기억했어요: {fact}\n'기억 목록'으로 확인하고 '기억 삭제 번호'로 지울 수 있어요.",
    "remember_duplicate": "이미 기억하고 있어요: {fact}",
    "remember_empty": "무엇을 기억할까요? '기억해 줘: 저는 재무팀이에요'처럼 콜론(:) 뒤에 적어 주세요.",
    "remember_full": "기억할 수 있는 내용은 {limit}개까지예요. '기억 목록'을 보고 '기억 삭제 번호'로 정리한 뒤 다시 말씀해 주세요.",
    "remember_too_long": "기억할 내용은 {limit}자 이내로 짧게 적어 주세요.",
    "memory_list": "기억하고 있는 내용이에요.\n{items}\n\n지우려면 '기억 삭제 번호'라고 말씀해 주세요.",
    "memory_empty": "아직 기억하고 있는 내용이 없어요. '기억해 줘: 저는 재무팀이에요'처럼 말씀해 주세요.",
    "memory_deleted": "{number}번 내용을 지웠어요: {fact}",
    "memory_delete_usage": "지울 번호를 함께 적어 주세요. 예: 기억 삭제 2",
    "memory_no_such": "{number}번 내용이 없어요. '기억 목록'으로 번호를 확인해 주세요.",
    "memory_private_only": "개인 기억은 저와의 1:1 대화에서만 관리할 수 있어요. 단체 대화에는 보이지 않아요.",
    "memory_off": "이 봇은 개인 기억 기능을 쓰지 않아요.",
}

_HAPSYO: dict[MessageId, str] = {
    "help": "저는 {name}입니다. 업무 질문, 문서 초안, 요약, 번역을 도와드립니다.\n\n명령어\n"
    + _COMMANDS_KO_FORMAL,
    "reset_done": "대화를 초기화했습니다. 새로운 주제로 말씀해 주십시오.",
    "forget_done": "저장된 대화 기록과 기억한 내용을 모두 삭제했습니다. 다음 대화는 처음부터 시작됩니다.",
    "not_configured": "아직 AI 모델이 연결되지 않아 답변을 드릴 수 없습니다. 관리자에게 설정을 요청해 주십시오.",
    "llm_failed": "죄송합니다. 지금은 답변을 드리기 어렵습니다. 잠시 후 다시 말씀해 주십시오.",
    "llm_busy": "죄송합니다. 지금 요청이 많아 답변이 어렵습니다. {seconds}초 후에 다시 말씀해 주십시오.",
    "llm_failed_midway": "(죄송합니다. 답변을 끝까지 드리지 못했습니다. 다시 질문해 주시면 이어서 도와드리겠습니다.)",
    "rate_limited_user": "메시지를 너무 빠르게 보내고 계십니다. {wait} 후에 다시 보내 주십시오.",
    "rate_limited_tenant": "현재 요청이 많이 몰려 잠시 대기 중입니다. {wait} 후에 다시 보내 주십시오.",
    "empty_message": "메시지 내용을 확인하지 못했습니다. 궁금하신 점을 글로 보내 주십시오.",
    "kakao_waiting": "답변을 준비하고 있습니다. 잠시만 기다려 주십시오.",
    "kakao_still_working": "답변 준비가 길어지고 있습니다. 잠시 후 아무 메시지나 보내 주시면 준비된 답변부터 알려 드리겠습니다.",
    "kakao_pending_intro": "앞서 문의하신 내용의 답변입니다.",
    "kakao_too_long": "답변 준비가 길어지고 있습니다. 잠시 후 아무 메시지나 보내 주시면 준비된 답변을 알려 드리겠습니다.",
    "kakao_next_pending": "방금 보내 주신 메시지의 답변은 아직 준비 중입니다. 잠시 후 다시 메시지를 보내 주십시오.",
    "truncated": "(답변이 길어 일부만 표시했습니다.)",
    "remember_done": "기억했습니다: {fact}\n'기억 목록'으로 확인하고 '기억 삭제 번호'로 삭제할 수 있습니다.",
    "remember_duplicate": "이미 기억하고 있습니다: {fact}",
    "remember_empty": "무엇을 기억할까요? '기억해 줘: 저는 재무팀입니다'처럼 콜론(:) 뒤에 적어 주십시오.",
    "remember_full": "기억할 수 있는 내용은 {limit}개까지입니다. '기억 목록'을 확인하고 '기억 삭제 번호'로 정리한 뒤 다시 말씀해 주십시오.",
    "remember_too_long": "기억할 내용은 {limit}자 이내로 짧게 적어 주십시오.",
    "memory_list": "기억하고 있는 내용입니다.\n{items}\n\n삭제하려면 '기억 삭제 번호'라고 말씀해 주십시오.",
    "memory_empty": "아직 기억하고 있는 내용이 없습니다. '기억해 줘: 저는 재무팀입니다'처럼 말씀해 주십시오.",
    "memory_deleted": "{number}번 내용을 삭제했습니다: {fact}",
    "memory_delete_usage": "삭제할 번호를 함께 적어 주십시오. 예: 기억 삭제 2",
    "memory_no_such": "{number}번 내용이 없습니다. '기억 목록'으로 번호를 확인해 주십시오.",
    "memory_private_only": "개인 기억은 1:1 대화에서만 관리할 수 있습니다. 단체 대화에는 표시되지 않습니다.",
    "memory_off": "이 봇은 개인 기억 기능을 사용하지 않습니다.",
}

_EN: dict[MessageId, str] = {
    "help": (
        "I'm {name}. I can help with work questions, drafts, summaries and translations.\n\n"
        "Commands\n• /reset (초기화): start this conversation over\n"
        "• /remember text (기억해 줘: …): in a 1:1 chat, tell me something to remember about you\n"
        "• /memory (기억 목록): list what I remember, numbered\n"
        "• /memory delete N (기억 삭제 N): delete item N\n"
        "• /forget (잊어줘): erase everything stored about you\n• /help (도움말): show this again"
    ),
    "reset_done": "Done, this conversation starts over. What would you like to talk about?",
    "forget_done": "I've erased everything stored about you, including what you asked me to remember. Our next conversation starts fresh.",
    "not_configured": "No AI model is connected yet, so I can't answer. Please ask your administrator to set one up.",
    "llm_failed": "Sorry, I can't answer right now. Please try again in a moment.",
    "llm_busy": "Sorry, I'm receiving too many requests. Please try again in about {seconds} seconds.",
    "llm_failed_midway": "(Sorry, I couldn't finish this answer. Ask again and I'll pick it up.)",
    "rate_limited_user": "You're sending messages too quickly. Please try again in {wait}.",
    "rate_limited_tenant": "Lots of requests are coming in right now, so I'm pausing briefly. Please try again in {wait}.",
    "empty_message": "I couldn't read that message. Please send your question as text.",
    "kakao_waiting": "I'm preparing your answer. One moment, please!",
    "kakao_still_working": "This answer is taking a while. Send me any message shortly and I'll give it to you first.",
    "kakao_pending_intro": "Here is the answer to your previous question.",
    "kakao_too_long": "This answer is taking a while. Send me any message shortly and I'll give it to you.",
    "kakao_next_pending": "The answer to your latest message is still being prepared. Please message me again shortly.",
    "truncated": "(The answer was long, so only part of it is shown.)",
    "remember_done": "Got it, I'll remember: {fact}\nSee everything with /memory and delete an item with /memory delete N.",
    "remember_duplicate": "I already remember that: {fact}",
    "remember_empty": "What should I remember? Write it after the command, e.g. /remember I work in finance.",
    "remember_full": "I can remember up to {limit} items. Check /memory, delete some with /memory delete N, then try again.",
    "remember_too_long": "Please keep it under {limit} characters.",
    "memory_list": "Here's what I remember about you:\n{items}\n\nTo delete one, send /memory delete N.",
    "memory_empty": "I don't remember anything about you yet. Try /remember I work in finance.",
    "memory_deleted": "Deleted item {number}: {fact}",
    "memory_delete_usage": "Tell me which number to delete, e.g. /memory delete 2.",
    "memory_no_such": "There is no item {number}. Check the numbers with /memory.",
    "memory_private_only": "Personal memory is managed in a 1:1 chat with me only; it never shows in group chats.",
    "memory_off": "Personal memory is turned off for this bot.",
}


def _copula(name: str) -> str:
    """이에요 after a final consonant, 예요 after a vowel (다리예요, 도우미예요, 비서봇이에요)."""
    last = name.strip()[-1:] if name.strip() else ""
    if "\uac00" <= last <= "\ud7a3":
        return "이에요." if (ord(last) - 0xAC00) % 28 else "예요."
    return "이에요."


def duration(seconds: int, *, lang: Lang) -> str:
    """A wait as people say it: 12초, 1분 30초, 2시간 / 12 seconds, 1 minute 30 seconds."""
    seconds = max(0, seconds)
    parts = [
        (seconds // 3600, "시간", "hour"),
        (seconds % 3600 // 60, "분", "minute"),
        (seconds % 60, "초", "second"),
    ]
    shown = [(n, ko, en) for n, ko, en in parts if n] or [(0, "초", "second")]
    if lang == "en":
        return " ".join(f"{n} {en}{'' if n == 1 else 's'}" for n, _, en in shown)
    return " ".join(f"{n}{ko}" for n, ko, _ in shown)


def detect_language(text: str, default: Lang) -> Lang:
    """The language the user chose: any Hangul means Korean, plain Latin words mean English."""
    if _HANGUL.search(text):
        return "ko"
    if len(_LATIN.findall(text)) >= 3:
        return "en"
    return default


def say(message: MessageId, *, lang: Lang, level: SpeechLevel = "haeyo", **values: object) -> str:
    """One user-facing sentence in the user's language and the bot's speech level."""
    table = _EN if lang == "en" else _HAPSYO if level == "hapsyo" else _HAEYO
    name = str(values.get("name", ""))
    return table[message].format(copula=_copula(name), **values)
