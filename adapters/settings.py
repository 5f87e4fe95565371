"""Settings: the only place dari reads the environment (and ``.env``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.limits import Rate

__all__ = ["DEFAULT_BOTS_DIR", "Settings"]

# The repository's bots/ folder; a deployment points DARI_BOTS_DIR elsewhere.
DEFAULT_BOTS_DIR = Path(__file__).resolve().parent.parent / "bots"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Every setting of the service. Field aliases are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    # LLM
    openai_api_key: SecretStr | None = Field(default=None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(default=None, validation_alias=_env("OPENAI_BASE_URL"))
    model: str = Field(default="gpt-4o-mini", validation_alias=_env("DARI_MODEL"))
    azure_openai_endpoint: str | None = Field(default=None, validation_alias=_env("AZURE_OPENAI_ENDPOINT"))
    azure_openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("AZURE_OPENAI_API_KEY")
    )
    openai_api_version: str = Field(default="2024-10-21", validation_alias=_env("OPENAI_API_VERSION"))
    llm_timeout: float = Field(default=60.0, gt=0, validation_alias=_env("DARI_LLM_TIMEOUT"))
    llm_max_retries: int = Field(default=3, ge=0, le=10, validation_alias=_env("DARI_LLM_MAX_RETRIES"))

    # Limits (per process for the LLM cap; rate limits are shared through Redis when it is set)
    llm_concurrency: int = Field(default=32, ge=1, le=10_000, validation_alias=_env("DARI_LLM_CONCURRENCY"))
    llm_breaker_threshold: int = Field(
        default=5, ge=1, le=1000, validation_alias=_env("DARI_LLM_BREAKER_THRESHOLD")
    )
    llm_breaker_cooldown: float = Field(
        default=30.0, gt=0, le=3600, validation_alias=_env("DARI_LLM_BREAKER_COOLDOWN")
    )
    rate_user: str = Field(default="20/60", validation_alias=_env("DARI_RATE_USER"))
    rate_tenant: str = Field(default="600/60", validation_alias=_env("DARI_RATE_TENANT"))

    # Memory
    redis_url: str | None = Field(default=None, validation_alias=_env("REDIS_URL"))
    redis_prefix: str = Field(default="dari", min_length=1, validation_alias=_env("DARI_REDIS_PREFIX"))
    # Connections per Redis client (store, rate limits, job queue: three per process); callers
    # beyond it wait for a free one instead of failing.
    redis_pool: int = Field(default=64, ge=1, le=10_000, validation_alias=_env("DARI_REDIS_POOL"))
    data_dir: Path = Field(default=Path(".dari"), validation_alias=_env("DARI_DATA_DIR"))
    bots_dir: Path = Field(default=DEFAULT_BOTS_DIR, validation_alias=_env("DARI_BOTS_DIR"))

    # Service
    log_level: str = Field(default="INFO", validation_alias=_env("DARI_LOG_LEVEL"))
    max_body_bytes: int = Field(default=256 * 1024, gt=0, validation_alias=_env("DARI_MAX_BODY_BYTES"))
    console_token: SecretStr | None = Field(default=None, validation_alias=_env("DARI_CONSOLE_TOKEN"))
    # A job (an accepted message) whose process stopped renewing it for this long is taken over.
    job_lease: float = Field(default=60.0, gt=0, le=3600, validation_alias=_env("DARI_JOB_LEASE"))
    # On SIGTERM: seconds to finish answers in flight before handing them to other processes.
    shutdown_grace: float = Field(default=25.0, gt=0, le=3600, validation_alias=_env("DARI_SHUTDOWN_GRACE"))

    # Slack
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    slack_app_token: SecretStr | None = Field(default=None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))
    slack_bot: str = Field(default="default", validation_alias=_env("DARI_SLACK_BOT"))
    slack_streaming: bool = Field(default=True, validation_alias=_env("DARI_SLACK_STREAMING"))
    slack_thread_follow_ups: bool = Field(default=True, validation_alias=_env("DARI_SLACK_THREAD_FOLLOW_UPS"))

    # Microsoft Teams (Bot Framework names)
    microsoft_app_id: str = Field(default="", validation_alias=_env("MicrosoftAppId", "MICROSOFT_APP_ID"))
    microsoft_app_password: SecretStr | None = Field(
        default=None, validation_alias=_env("MicrosoftAppPassword", "MICROSOFT_APP_PASSWORD")
    )
    microsoft_app_type: str = Field(
        default="MultiTenant", validation_alias=_env("MicrosoftAppType", "MICROSOFT_APP_TYPE")
    )
    microsoft_app_tenant_id: str = Field(
        default="", validation_alias=_env("MicrosoftAppTenantId", "MICROSOFT_APP_TENANT_ID")
    )
    teams_bot: str = Field(default="default", validation_alias=_env("DARI_TEAMS_BOT"))
    teams_reply_deadline: float = Field(default=12.0, gt=0, validation_alias=_env("DARI_TEAMS_DEADLINE"))

    # KakaoTalk
    kakao_skill_secret: SecretStr | None = Field(default=None, validation_alias=_env("KAKAO_SKILL_SECRET"))
    kakao_budget: float = Field(default=3.5, gt=0, lt=5, validation_alias=_env("DARI_KAKAO_BUDGET"))
    kakao_callback_budget: float = Field(
        default=0.8, ge=0, lt=5, validation_alias=_env("DARI_KAKAO_CALLBACK_BUDGET")
    )
    kakao_callback_domain: str = Field(
        default="kakao.com", validation_alias=_env("DARI_KAKAO_CALLBACK_DOMAIN")
    )
    kakao_callback_window: float = Field(
        default=55.0, gt=0, le=60, validation_alias=_env("DARI_KAKAO_CALLBACK_WINDOW")
    )

    @field_validator("rate_user", "rate_tenant")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        Rate.parse(value)  # a ValueError names the accepted forms
        return value

    @property
    def rates(self) -> dict[str, Rate]:
        """The rate of each limit scope ("user", "tenant"); a scope set to "off" is left out."""
        parsed = {"user": Rate.parse(self.rate_user), "tenant": Rate.parse(self.rate_tenant)}
        return {scope: rate for scope, rate in parsed.items() if rate is not None}

    @property
    def llm_configured(self) -> bool:
        """True when some LLM endpoint is set (a local server needs no key)."""
        if self.azure_openai_endpoint:
            return self.azure_openai_api_key is not None
        return self.openai_api_key is not None or bool(self.openai_base_url)

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and self.slack_signing_secret is not None
