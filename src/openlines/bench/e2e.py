"""`openlines bench e2e`: the whole suite as separate processes under a fixed arrival rate.

Reports, each beside what it is compared with:
- latency from "webhook accepted" (ingest answered 200, i.e. the broker acked) to the dialog
  being assigned as seen by a supervisor polling the API, and as pushed on the WebSocket;
- ingest webhooks/s against a same-run raw baseline (a bare aiohttp handler awaiting one
  aiokafka send), both closed-loop, each alone, on a broker of their own before the suite
  starts;
- each process's peak RSS during the latency run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from rich.console import Console

from openlines.events.topics import INBOUND
from openlines.kit.embedded import EmbeddedKafka, reserve_port
from openlines.kit.http.auth import issue_token
from openlines.kit.kafka.admin import ensure_topics
from openlines.kit.settings import DEV_JWT_SECRET
from openlines.stack.services import reserve_port_base
from openlines.stack.supervisor import StackConfig, start_detached

OPERATORS = [f"op{i}" for i in range(1, 11)]
CHANNEL, SECRET = "tg-demo", "demo-secret"

BENCH_LINES = """
operators:
{operators}
  - {{id: sue, role: supervisor, max_dialogs: 5}}
lines:
  - id: demo
    channels:
      - id: tg-demo
        type: telegram
        secret: demo-secret
        token: "1:bench"
        api_base: ${{OPENLINES_SANDBOX_URL:-http://127.0.0.1:8090}}/sandbox/tg-demo
    operators: [{names}]
    routing: round_robin
    auto_lead: true
"""


def _lines_yaml() -> str:
    ops = "\n".join(f"  - {{id: {op}, max_dialogs: 100000}}" for op in OPERATORS)
    return BENCH_LINES.format(operators=ops, names=", ".join(OPERATORS))


def percentiles(samples: list[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}


@dataclass
class E2eReport:
    rate: int
    duration: float
    sent: int = 0
    api_latency_ms: list[float] = field(default_factory=list)
    ws_latency_ms: list[float] = field(default_factory=list)
    ingest_rps: float = 0.0
    raw_rps: float = 0.0
    ingest_ratios: list[float] = field(default_factory=list)
    """ingest/raw of each pair of back-to-back rounds."""
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    """CPU each process used from the first webhook until every dialog was assigned."""
    cpu_window: float = 0.0


_ids = itertools.count(int(time.time()) % 10**6 * 1000)


def update(chat_id: int, text: str) -> dict[str, Any]:
    n = next(_ids)
    return {
        "update_id": n,
        "message": {
            "message_id": n,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": f"Customer {chat_id}"},
            "text": text,
        },
    }


class RssSampler:
    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak: dict[str, float] = dict.fromkeys(pids, 0.0)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for name, proc in self.procs.items():
                with contextlib.suppress(psutil.Error):
                    rss = proc.memory_info().rss / 2**20
                    self.peak[name] = max(self.peak[name], rss)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)


class CpuMeter:
    """CPU seconds each process of the stack uses over a window: where a dialog's cost goes.

    Postgres counts its backends too (live ones, plus those it has reaped).
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._start: dict[str, float] = {}
        self._started_at = 0.0

    def start(self) -> None:
        self._start, self._started_at = self._read(), time.perf_counter()

    def stop(self) -> tuple[dict[str, float], float]:
        """CPU seconds per process since `start`, and the window's wall seconds."""
        end, wall = self._read(), time.perf_counter() - self._started_at
        return {name: end[name] - self._start.get(name, 0.0) for name in end}, wall

    def _read(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for name, proc in self.procs.items():
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total = t.user + t.system + t.children_user + t.children_system
                for child in proc.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        c = child.cpu_times()
                        total += c.user + c.system
                used[name] = total
        return used


async def _latency_run(
    http: aiohttp.ClientSession,
    gateway: str,
    report: E2eReport,
    sampler: RssSampler,
    cpu: CpuMeter,
) -> None:
    sue = {"Authorization": f"Bearer {issue_token('sue', ['supervisor'], secret=DEV_JWT_SECRET)}"}
    for op in OPERATORS:
        async with http.put(
            f"{gateway}/api/v1/operators/{op}/presence", json={"status": "online"}, headers=sue
        ) as resp:
            assert resp.status == 200, await resp.text()
    accepted: dict[int, float] = {}  # chat id -> when ingest answered 200
    dialog_chat: dict[str, int] = {}
    assigned_ws: dict[str, float] = {}
    assigned_api: dict[int, float] = {}
    token = issue_token("sue", ["supervisor"], secret=DEV_JWT_SECRET)
    ws = await http.ws_connect(f"{gateway}/api/v1/stream?token={token}")
    stop = asyncio.Event()

    async def read_ws() -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = msg.json()
            payload = data.get("event", {}).get("payload", {})
            if data.get("type") == "DialogOpened":
                dialog_chat[str(payload["dialog_id"])] = int(
                    payload["conversation_key"].rsplit(":", 1)[1]
                )
            elif data.get("type") == "DialogAssigned":
                assigned_ws.setdefault(str(payload["dialog_id"]), time.perf_counter())

    async def poll_api() -> None:
        # Assignment moves a dialog to the top of the supervisor's "active" tab (sorted by last
        # update; new unassigned dialogs do not push it down there), so the top 25 every
        # 40 ms catches each one without loading dialogs with the measurement itself (200
        # items every 25 ms did: ~8k dialog JSONs/s). Resolution 40 ms.
        url = f"{gateway}/api/v1/dialogs?tab=active&limit=25"
        while not stop.is_set():
            async with http.get(url, headers=sue) as resp:
                now = time.perf_counter()
                if resp.status == 200:
                    for item in (await resp.json())["items"]:
                        chat = int(item["customer"]["external_id"])
                        assigned_api.setdefault(chat, now)
            await asyncio.sleep(0.04)

    async def send(chat: int) -> None:
        async with http.post(
            f"{gateway}/webhooks/telegram/{CHANNEL}",
            json=update(chat, "hi"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        ) as resp:
            if resp.status == 200:
                accepted[chat] = time.perf_counter()

    tasks = [
        asyncio.create_task(read_ws()),
        asyncio.create_task(poll_api()),
        asyncio.create_task(sampler.run(stop)),
    ]
    base_chat = 10**9 + (int(time.time()) % 10**6) * 1000
    total = int(report.rate * report.duration)
    cpu.start()
    started = time.perf_counter()
    sends = []
    for i in range(total):
        delay = started + i / report.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sends.append(asyncio.create_task(send(base_chat + i)))
    await asyncio.gather(*sends)
    report.sent = len(accepted)
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and (
        len(assigned_api) < len(accepted) or len(assigned_ws) < len(accepted)
    ):
        await asyncio.sleep(0.1)
    report.cpu_seconds, report.cpu_window = cpu.stop()
    stop.set()
    await ws.close()
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    report.api_latency_ms = [
        (assigned_api[c] - t) * 1000 for c, t in accepted.items() if c in assigned_api
    ]
    by_chat = {chat: assigned_ws[d] for d, chat in dialog_chat.items() if d in assigned_ws}
    report.ws_latency_ms = [(by_chat[c] - t) * 1000 for c, t in accepted.items() if c in by_chat]


async def _closed_loop(
    http: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    seconds: float,
    concurrency: int = 32,
) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < deadline:
            i += 1
            async with http.post(url, json=update(w * 10**6 + i, "x"), headers=headers) as resp:
                await resp.read()
                if resp.status == 200:
                    done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done / (time.perf_counter() - started)


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _wait_http(http: aiohttp.ClientSession, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url) as resp:
                if resp.status < 500:
                    return
        await asyncio.sleep(0.2)
    raise TimeoutError(url)


async def _ingest_throughput(
    http: aiohttp.ClientSession,
    home: Path,
    lines: Path,
    report: E2eReport,
    seconds: float,
) -> None:
    """ingest vs the raw baseline, each alone, on a broker of their own before the suite
    starts: both compete only with the load generator, not with the rest of the suite."""
    kafka = EmbeddedKafka(log_path=home / "logs" / "bench-tansu.log").start()
    try:
        await _ingest_vs_raw(http, kafka.bootstrap, home, lines, report, seconds)
    finally:
        kafka.stop()


async def _ingest_vs_raw(
    http: aiohttp.ClientSession,
    bootstrap: str,
    home: Path,
    lines: Path,
    report: E2eReport,
    seconds: float,
) -> None:
    ns = f"benchraw{uuid.uuid4().hex[:6]}."
    await ensure_topics(bootstrap, [f"{ns}{INBOUND}"])
    ingest_port, raw_port = reserve_port(), reserve_port()
    ingest = _spawn(
        [sys.executable, "-m", "openlines.ingest"],
        {
            "OPENLINES_HTTP_PORT": str(ingest_port),
            "OPENLINES_KAFKA_BOOTSTRAP": bootstrap,
            "OPENLINES_TOPIC_NAMESPACE": ns,
            "OPENLINES_LINES_FILE": str(lines),
            "OPENLINES_LOG_LEVEL": "WARNING",
        },
        home / "logs" / "bench-ingest.log",
    )
    raw = _spawn(
        [
            sys.executable,
            "-m",
            "openlines.bench.raw_ingest",
            str(raw_port),
            bootstrap,
            f"{ns}{INBOUND}",
        ],
        {},
        home / "logs" / "bench-raw.log",
    )
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    try:
        await _wait_http(http, f"http://127.0.0.1:{ingest_port}/readyz")
        await _wait_http(http, f"http://127.0.0.1:{raw_port}/")
        path = f"/webhooks/telegram/{CHANNEL}"
        raw_url = f"http://127.0.0.1:{raw_port}{path}"
        ingest_url = f"http://127.0.0.1:{ingest_port}{path}"
        # Warm both up, then measure each alone, alternating in short rounds: a drift in what
        # else this shared machine does then weighs on both sides of a pair alike, and the
        # median of the pairs' ratios is not swayed by one disturbed round.
        await _closed_loop(http, raw_url, headers, 1)
        await _closed_loop(http, ingest_url, headers, 1)
        rounds = 9
        raw_rates, ingest_rates = [], []
        for _ in range(rounds):
            raw_rates.append(await _closed_loop(http, raw_url, headers, seconds / rounds))
            ingest_rates.append(await _closed_loop(http, ingest_url, headers, seconds / rounds))
        report.raw_rps = statistics.fmean(raw_rates)
        report.ingest_rps = statistics.fmean(ingest_rates)
        report.ingest_ratios = [i / r for i, r in zip(ingest_rates, raw_rates, strict=True) if r]
    finally:
        for proc in (ingest, raw):
            proc.terminate()
            proc.wait(15)


async def run(rate: int = 100, duration: float = 30, console: Console | None = None) -> E2eReport:
    console = console or Console()
    report = E2eReport(rate=rate, duration=duration)
    with tempfile.TemporaryDirectory(prefix="openlines-bench-e2e-") as tmp:
        home = Path(tmp)
        lines = home / "lines.yaml"
        lines.write_text(_lines_yaml())
        (home / "logs").mkdir()
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            await _ingest_throughput(http, home, lines, report, seconds=min(18.0, duration))
        base = reserve_port_base()
        config = StackConfig(home=home, kafka_port=0, port_base=base, lines_file=lines)
        if await asyncio.to_thread(start_detached, config, console) != 0:
            raise RuntimeError("the stack did not start")
        try:
            state = json.loads((home / "stack.json").read_text())
            pids = {s["name"]: s["pid"] for s in state["services"]}
            gateway = f"http://127.0.0.1:{base}"
            connector = aiohttp.TCPConnector(limit=200)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
                sampler = RssSampler(pids)
                infra = {"postgres": state["postgres"]["pid"], "tansu": state["kafka"]["pid"]}
                await _latency_run(http, gateway, report, sampler, CpuMeter({**pids, **infra}))
                report.peak_rss_mb = sampler.peak
        finally:
            down = [sys.executable, "-m", "openlines.cli.main", "down", "--home", str(home)]
            await asyncio.to_thread(subprocess.run, down, capture_output=True, timeout=120)
    return report
