"""What every benchmark shares: pinned subprocesses, free ports, /proc readings, percentiles, results."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "BENCH",
    "PYTHON",
    "RESULTS",
    "ROOT",
    "Layout",
    "Process",
    "base_env",
    "busy_cpu_seconds",
    "dari_env",
    "delete_redis_prefix",
    "fmt",
    "free_port",
    "machine",
    "percentile",
    "proc_cpu_seconds",
    "proc_rss_bytes",
    "run_json",
    "scratch_dir",
    "summarize",
    "table",
    "write_result",
]

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PYTHON = sys.executable
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Layout:
    """Which core runs what: the server under test alone on one, everything else on the other.

    Attributes:
        server_cpu: the core of the server under test (None: not pinned).
        load_cpu: the core of the load generator and stand-ins (None: not pinned).
        repo: the source tree the server runs from (PYTHONPATH), normally this repository.
        redis_url: the Redis server for the Redis-store variants.
    """

    server_cpu: int | None
    load_cpu: int | None
    repo: Path
    redis_url: str

    @classmethod
    def detect(cls, *, pin: bool, repo: Path, redis_url: str) -> Layout:
        cores = sorted(os.sched_getaffinity(0))
        if pin and len(cores) >= 2 and shutil.which("taskset"):
            return cls(server_cpu=cores[0], load_cpu=cores[1], repo=repo, redis_url=redis_url)
        return cls(server_cpu=None, load_cpu=None, repo=repo, redis_url=redis_url)


def free_port() -> int:
    """A port free on 127.0.0.1 right now (loopback only; the race is harmless here)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pinned(cmd: Sequence[str], cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd] if cpu is not None else list(cmd)


def base_env(repo: Path) -> dict[str, str]:
    """A clean environment: nothing from this shell's OPENAI_*, REDIS_URL or Slack variables leaks in."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "TMPDIR") if name in os.environ}
    paths = [str(repo)] if repo == ROOT else [str(repo), str(ROOT)]
    env.update(LANG="C.UTF-8", PYTHONPATH=os.pathsep.join(paths), PYTHONUNBUFFERED="1")
    return env


def dari_env(
    layout: Layout,
    *,
    llm_url: str,
    data_dir: Path,
    redis_prefix: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for ``dari serve`` against the stand-in LLM (embedded store unless a prefix is given)."""
    env = base_env(layout.repo)
    env.update(
        OPENAI_BASE_URL=llm_url,
        OPENAI_API_KEY="bench",
        DARI_DATA_DIR=str(data_dir),
        DARI_LOG_LEVEL="INFO",
    )
    if redis_prefix is not None:
        env.update(REDIS_URL=layout.redis_url, DARI_REDIS_PREFIX=redis_prefix)
    env.update(extra or {})
    return env


class Process:
    """A subprocess of ours, optionally pinned to one core; stderr goes to a log file."""

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str],
        cpu: int | None,
        log: Path,
        cwd: Path | None = None,
    ) -> None:
        self.log = log
        self._log: TextIO = log.open("w", encoding="utf-8")
        self.popen = subprocess.Popen(
            _pinned(cmd, cpu),
            env=dict(env),
            cwd=cwd or ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_http(self, url: str, *, timeout: float = 30.0) -> None:
        """Wait until ``url`` answers 2xx; raise with the log's tail if the process dies or is too slow."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if 200 <= response.status < 300:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)  # start-up polling, not a measurement
        self.stop()
        tail = self.log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{self.popen.args!r} did not become ready at {url}:\n{tail}")

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return proc_rss_bytes(self.pid)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; only this process."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def proc_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def busy_cpu_seconds() -> float:
    """CPU time spent by the whole machine (all processes, all cores) since boot."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / _TICKS


def run_json(
    module: str, spec: Mapping[str, Any], *, env: Mapping[str, str], cpu: int | None, timeout: float
) -> dict[str, Any]:
    """Run ``python -m module SPEC_JSON`` (pinned) and return the JSON object it prints last."""
    cmd = _pinned([PYTHON, "-m", module, json.dumps(spec)], cpu)
    done = subprocess.run(
        cmd, env=dict(env), cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{module} printed no result:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def delete_redis_prefix(redis_url: str, prefix: str) -> int:
    """Delete every key under ``prefix:`` (benchmarks leave nothing behind in Redis)."""
    from redis import Redis

    client = Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        return len(keys)
    finally:
        client.close()


@contextmanager
def scratch_dir(name: str) -> Iterator[Path]:
    """A temporary folder for logs and data; DARI_BENCH_KEEP=1 keeps it (its path is printed)."""
    path = Path(tempfile.mkdtemp(prefix=f"dari-bench-{name}-"))
    keep = os.environ.get("DARI_BENCH_KEEP") == "1"
    try:
        yield path
    finally:
        if keep:
            print(f"  kept {path}", flush=True)
        else:
            shutil.rmtree(path, ignore_errors=True)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), linear between closest ranks; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max (seconds in, seconds out) of a sample."""
    return {
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


def machine() -> dict[str, Any]:
    """The machine and the source measured."""
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo", encoding="ascii") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", "core", "adapters"))
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit + ("+uncommitted core/adapters changes" if dirty else ""),
    }


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return done.stdout.strip()


def write_result(name: str, data: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def fmt(value: object, digits: int = 1) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (it reads as plain text too)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
