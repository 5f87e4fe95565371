"""Every sentence the browser console says on its own (Korean, 해요체)."""

from __future__ import annotations

__all__ = [
    "BAD_CONTENT_TYPE",
    "BAD_JSON",
    "BAD_REQUEST",
    "CROSS_SITE",
    "DOOR_DETAIL",
    "FAILED",
    "LOOPBACK_HOST_ONLY",
    "LOOPBACK_ONLY",
    "NEED_TOKEN",
    "TOO_LARGE",
    "UNKNOWN_BOT",
    "WRONG_TOKEN",
]

NEED_TOKEN = "콘솔 토큰이 필요해요. 로그인하거나 Authorization: Bearer 헤더로 토큰을 보내 주세요."
WRONG_TOKEN = "토큰이 맞지 않아요. 다시 입력해 주세요."
LOOPBACK_ONLY = (
    "콘솔 토큰(DARI_CONSOLE_TOKEN)이 설정되지 않아서 이 콘솔은 서버가 실행 중인 컴퓨터에서만 열 수 있어요. "
    "다른 컴퓨터에서 쓰려면 DARI_CONSOLE_TOKEN에 긴 임의의 값을 설정하고 다시 시작해 주세요."
)
LOOPBACK_HOST_ONLY = (
    "토큰 없이 쓰는 콘솔은 localhost나 127.0.0.1 주소로만 열 수 있어요. "
    "다른 이름으로 열려면 DARI_CONSOLE_TOKEN을 설정해 주세요."
)
CROSS_SITE = "다른 사이트에서 보낸 요청은 받지 않아요."
BAD_CONTENT_TYPE = "요청 본문은 JSON(Content-Type: application/json)이어야 해요."
BAD_JSON = "요청 본문이 올바른 JSON이 아니에요."
BAD_REQUEST = "요청 형식이 맞지 않아요: {detail}"
TOO_LARGE = "요청이 너무 커요. 메시지는 {chars:,}자까지 보낼 수 있어요."
UNKNOWN_BOT = "'{bot}' 봇은 없어요. 목록에 있는 봇을 골라 주세요."
FAILED = "답변을 만드는 중에 문제가 생겼어요. 잠시 후 다시 시도해 주세요."

# door id -> state -> what the status panel says
DOOR_DETAIL = {
    "kakao": {
        "on": "스킬 URL에 공유 비밀값이 있어야 해요.",
        "open": "KAKAO_SKILL_SECRET이 없어서 주소를 아는 누구나 호출할 수 있어요.",
    },
    "slack": {
        "on": "이벤트를 /slack/events로 받아요.",
        "socket": "Socket Mode로 연결해요.",
        "off": "SLACK_BOT_TOKEN과 SLACK_SIGNING_SECRET을 설정하면 켜져요.",
    },
    "teams": {
        "on": "Bot Framework 인증을 거쳐 /api/messages로 받아요.",
        "local": "MicrosoftAppId가 없어서 인증 없이 받아요. 로컬 테스트에만 쓰세요.",
    },
    "web": {
        "on": "콘솔 토큰으로 보호돼요.",
        "local": "토큰이 없어서 이 컴퓨터에서만 열려요.",
    },
}
