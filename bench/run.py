"""Run dari's benchmarks: ``python bench/run.py [--quick] [--only NAME ...]``.

Each benchmark writes ``bench/results/<name>.json`` and prints a table. Everything runs on
127.0.0.1 against stand-ins (LLM, Slack Web API, Bot Connector, Kakao callback); the Redis
variants use the Redis server at ``--redis`` (default redis://127.0.0.1:6379/0) under a
fresh key prefix that is deleted afterwards. See docs/benchmarks.md for what each one means.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Layout, machine, write_result

# name -> module; each has run(layout, quick=...) -> dict and report(dict) -> str
BENCHMARKS = {
    "overhead": "bench.overhead",
    "concurrency": "bench.concurrency",
    "prompt_growth": "bench.prompt_growth",
    "kakao_deadline": "bench.kakao_deadline",
    "first_text": "bench.first_text",
    "profile": "bench.profile",
    "soak": "bench.soak",
}
DEFAULT = ("overhead", "concurrency", "prompt_growth", "kakao_deadline", "first_text")  # soak: on its own


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(BENCHMARKS),
        help="benchmarks to run (default: all but profile and soak)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts and short windows (under 2 minutes)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and the load to cores")
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/0", help="Redis for the Redis-store variants"
    )
    parser.add_argument(
        "--repo",
        type=Path,
        default=ROOT,
        help="source tree the server runs from (e.g. a scratch copy with a proposed fix)",
    )
    parser.add_argument("--tag", default="", help="suffix for the result files (e.g. 'fix-json')")
    parser.add_argument(
        "--variants",
        nargs="+",
        help="overhead only: which servers (floor, kakao, kakao/sqlite, slack/redis, ...)",
    )
    parser.add_argument("--concurrency", nargs="+", type=int, help="overhead: in flight; concurrency: levels")
    parser.add_argument("--duration", type=float, help="overhead: seconds measured per server")
    parser.add_argument("--teams-every", type=int, help="soak: every n-th conversation through Teams")
    parser.add_argument("--kakao-every", type=int, help="soak: every n-th other conversation through Kakao")
    parser.add_argument("--lease", type=float, help="soak: seconds a job stays its process's without renewal")
    args = parser.parse_args(argv)

    layout = Layout.detect(pin=not args.no_pin, repo=args.repo.resolve(), redis_url=args.redis)
    names = args.only or list(DEFAULT)
    about = machine()
    if layout.repo != ROOT:  # a scratch tree: its COMMIT file names what it was made from, if any
        stamp = layout.repo / "COMMIT"
        made_from = stamp.read_text(encoding="utf-8").strip() if stamp.exists() else "unknown"
        about["commit"] = f"{made_from} (tree at {layout.repo})"
    print(f"machine: {about['nproc']} cores, {about['cpu']}, Python {about['python']}, {about['commit']}")
    print(f"layout: server on core {layout.server_cpu}, load and stand-ins on core {layout.load_cpu}")
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        print(f"\n== {name}{' (quick)' if args.quick else ''}", flush=True)
        started = time.monotonic()
        options: dict[str, object] = {}
        if args.variants:
            options["variants"] = args.variants
        if args.concurrency:
            options["concurrency" if name == "overhead" else "levels"] = args.concurrency
        if args.duration:
            options["duration"] = args.duration
        if args.teams_every:
            options["teams_every"] = args.teams_every
        if args.kakao_every:
            options["kakao_every"] = args.kakao_every
        if args.lease:
            options["lease"] = args.lease
        result = module.run(layout, quick=args.quick, options=options)
        took = time.monotonic() - started
        result = {
            "benchmark": name,
            "quick": args.quick,
            "seconds": round(took, 1),
            "machine": about,
            "repo": str(layout.repo),
            "layout": {"server_cpu": layout.server_cpu, "load_cpu": layout.load_cpu},
            **result,
        }
        suffix = ("-quick" if args.quick else "") + (f"-{args.tag}" if args.tag else "")
        path = write_result(name + suffix, result)
        print(module.report(result))
        print(f"({took:.0f} s; {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
