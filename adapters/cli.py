"""The ``dari`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError

from adapters.logs import configure_logging
from adapters.settings import Settings
from core.errors import ConfigError, DariError

__all__ = ["main"]

log = logging.getLogger("dari")


def _secrets(settings: Settings) -> list[str]:
    values = [
        settings.openai_api_key,
        settings.azure_openai_api_key,
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.slack_app_token,
        settings.microsoft_app_password,
        settings.kakao_skill_secret,
        settings.console_token,
    ]
    found = [v.get_secret_value() for v in values if v is not None]
    if settings.redis_url and "@" in settings.redis_url:
        # redis://user:password@host: the password part.
        found.append(settings.redis_url.split("@", 1)[0].rsplit(":", 1)[-1])
    return found


def _serve(args: argparse.Namespace) -> int:
    # imported late: `dari --help` stays fast
    from adapters.server import RUNNER_OPTIONS, create_app

    try:
        settings = Settings()
    except ValidationError as error:
        print(f"dari: invalid setting:\n{error}", file=sys.stderr)
        return 2
    configure_logging(level=settings.log_level, secrets=_secrets(settings))
    try:
        app = create_app(settings)
    except ConfigError as error:
        log.error("cannot start: %s", error)
        print(f"dari: {error}", file=sys.stderr)
        return 2
    if args.workers > 1 and not args.worker:
        return _supervise(args, settings)
    log.info("dari listening on http://%s:%d", args.host, args.port)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log_class=RUNNER_OPTIONS["access_log_class"],
        print=None,
        # Answers in flight get the drain time (DARI_SHUTDOWN_GRACE); requests a little more.
        shutdown_timeout=settings.shutdown_grace + 5.0,
        reuse_port=args.worker or None,  # workers of one supervisor share the port
    )
    return 0


def _supervise(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from adapters.supervisor import Supervisor, worker_command

    if not settings.redis_url:
        message = "--workers above 1 needs REDIS_URL: the workers share memory, dedupe and jobs through Redis"
        log.error("cannot start: %s", message)
        print(f"dari: {message}", file=sys.stderr)
        return 2
    log.info("dari supervising %d workers on http://%s:%d", args.workers, args.host, args.port)
    command = worker_command(host=args.host, port=args.port)
    supervisor = Supervisor(count=args.workers, command=command, grace=settings.shutdown_grace + 10.0)
    return asyncio.run(supervisor.run())


def _teams_package(args: argparse.Namespace) -> int:
    from adapters.teams.package import write_package

    app_id = args.app_id
    if app_id is None:
        try:
            app_id = Settings().microsoft_app_id
        except ValidationError as error:
            print(f"dari: invalid setting:\n{error}", file=sys.stderr)
            return 2
    options = {
        name: getattr(args, name)
        for name in ("version", "developer", "website_url", "privacy_url", "terms_url", "source")
        if getattr(args, name) is not None
    }
    try:
        path = write_package(args.out, app_id=app_id, **options)
    except ConfigError as error:
        print(f"dari: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _check(args: argparse.Namespace) -> int:
    # imported late: `dari --help` stays fast
    import asyncio

    from adapters.check import failed, format_table, invalid_settings, run_checks

    try:
        settings = Settings()
    except ValidationError as error:
        print(format_table([invalid_settings(error)], args.lang))
        return 1
    results = asyncio.run(run_checks(settings))
    print(format_table(results, args.lang))
    return 1 if failed(results) else 0


def _settings_or_none() -> Settings | None:
    try:
        return Settings()
    except ValidationError as error:
        print(f"dari: invalid setting:\n{error}", file=sys.stderr)
        return None


def _export_user(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from adapters.admin import export_user

    settings = _settings_or_none()
    if settings is None:
        return 2
    try:
        data = asyncio.run(
            export_user(settings, platform=args.platform, tenant=args.tenant, user_id=args.user, bot=args.bot)
        )
    except DariError as error:
        print(f"dari: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if args.output is None:
        print(text)
    else:
        args.output.write_text(text + "\n", encoding="utf-8")
        print(args.output)
    return 0


def _forget_user(args: argparse.Namespace) -> int:
    import asyncio

    from adapters.admin import forget_user

    settings = _settings_or_none()
    if settings is None:
        return 2
    try:
        removed = asyncio.run(
            forget_user(settings, platform=args.platform, tenant=args.tenant, user_id=args.user)
        )
    except DariError as error:
        print(f"dari: erasure not verified: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"erased {removed} items; nothing of this user is left")
    return 0


def _add_user_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--platform", required=True, choices=["kakao", "slack", "teams", "web"])
    parser.add_argument(
        "--tenant", required=True, help="Kakao bot id, Slack [enterprise:]team id, Teams tenant id"
    )
    parser.add_argument("--user", required=True, help="the user's id on that platform")


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dari", description="다리: Korean enterprise AI assistant")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the service (all doors on one port)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=3978, help="port to listen on (default 3978)")
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes sharing the port (default 1; more than 1 needs REDIS_URL)",
    )
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # set by the supervisor
    serve.set_defaults(run=_serve)
    check = commands.add_parser("check", help="check settings, bot files, the LLM, the store and each door")
    check.add_argument("--lang", choices=["ko", "en"], default="ko", help="table language (default ko)")
    check.set_defaults(run=_check)

    export = commands.add_parser("export-user", help="export everything stored about one user (JSON)")
    _add_user_arguments(export)
    export.add_argument("--bot", help="only this bot's data (default: every bot)")
    export.add_argument("--output", type=Path, help="write the JSON to this file instead of stdout")
    export.set_defaults(run=_export_user)

    forget = commands.add_parser("forget-user", help="erase everything stored about one user, verified")
    _add_user_arguments(forget)
    forget.set_defaults(run=_forget_user)

    package = commands.add_parser(
        "teams-package", help="write the Teams app package (zip) to upload in Teams admin center"
    )
    package.add_argument("--app-id", help="the bot's Microsoft App ID (default: MicrosoftAppId)")
    package.add_argument("--out", type=Path, default=Path("dist"), help="zip file or folder (default dist/)")
    package.add_argument("--version", help="app version x.y.z; raise it for every update")
    package.add_argument("--developer", help="publisher name shown in Teams")
    package.add_argument("--website-url", help="publisher website (https)")
    package.add_argument("--privacy-url", help="privacy statement (https)")
    package.add_argument("--terms-url", help="terms of use (https)")
    package.add_argument(
        "--source", type=Path, help="folder with manifest.json and icons (default deploy/teams)"
    )
    package.set_defaults(run=_teams_package)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
