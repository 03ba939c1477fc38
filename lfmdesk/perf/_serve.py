"""``python -m lfmdesk.bench --serve``: the OpenAI-compatible server against the engine alone.

One process: the engine on its own thread behind the real app on uvicorn (127.0.0.1, a free
port), driven over HTTP by 1, 4 and 8 concurrent clients. Every request is the same image
question with a forced answer length, so each costs the engine the same work. Reported per
concurrency: requests/s and p50/p95 latency; and the server's overhead per request at
concurrency 1 (median latency over the HTTP API / median of ``Engine.stream_chat`` alone on
the same request; goal <= 1.05).
"""

from __future__ import annotations

import base64
import io
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lfmdesk.core import ChatRequest, Engine, SamplingSettings, load_image

__all__ = ["ServeLevel", "ServeReport", "bench_serve", "serve_report"]

CONCURRENCY = (1, 4, 8)
PROMPT = "Describe this image in detail."


@dataclass
class ServeLevel:
    """One concurrency level."""

    concurrency: int
    requests: int
    requests_per_s: float
    p50_s: float
    p95_s: float


@dataclass
class ServeReport:
    """Everything ``--serve`` measured."""

    tokens: int
    engine_alone_s: float
    levels: list[ServeLevel] = field(default_factory=list)
    note: str = ""

    @property
    def overhead(self) -> float:
        """Median API latency at concurrency 1 over the engine alone."""
        one = next((lvl for lvl in self.levels if lvl.concurrency == 1), None)
        return one.p50_s / self.engine_alone_s if one and self.engine_alone_s else 0.0


def _picture(side: int = 256) -> Any:
    from lfmdesk.core.testing import noise_image

    return noise_image(side, side)


def _body(model: str, tokens: int) -> dict[str, Any]:
    buffer = io.BytesIO()
    _picture().save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": PROMPT}]
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": tokens,
        "temperature": 0,
        "repetition_penalty": 1.0,
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _level(url: str, body: dict[str, Any], concurrency: int, requests: int) -> ServeLevel:
    import httpx2

    latencies: list[float] = []
    lock = threading.Lock()
    todo = iter(range(requests))

    def client() -> None:
        with httpx2.Client(timeout=600) as http:
            while True:
                with lock:
                    if next(todo, None) is None:
                        return
                began = time.perf_counter()
                response = http.post(url + "/chat/completions", json=body)
                response.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return ServeLevel(
        concurrency,
        len(latencies),
        len(latencies) / wall,
        statistics.median(latencies),
        _percentile(latencies, 0.95),
    )


def bench_serve(model_dir: Path, *, tokens: int = 16, requests: int = 8) -> ServeReport:
    """Measure the server on ``model_dir`` (see the module docstring)."""
    from lfmdesk.core.serve._app import ServeOptions, create_app
    from lfmdesk.core.serve._host import EngineThread
    from lfmdesk.core.serve._server import ServerThread

    def make() -> Engine:
        engine = Engine()
        engine.load(model_dir)
        tokenizer = getattr(engine._processor, "tokenizer", engine._processor)
        tokenizer.stopping_criteria = lambda _token: False  # always exactly `tokens` tokens
        return engine

    host = EngineThread(make, max_queue=64)
    info = host.start()
    server = ServerThread(create_app(host, ServeOptions()), "127.0.0.1", 0)
    url = server.start()
    try:
        body = _body(info.name, tokens)
        _engine_alone(host, tokens, 1)  # warm-up: vision cache, kernels
        _level(url, body, 1, 1)  # warm-up: the first HTTP request pays imports
        # Concurrency 1 alternates with the engine alone, request by request: on a shared
        # CPU whose speed drifts, both then see the same machine.
        alone: list[float] = []
        one: list[ServeLevel] = []
        for _ in range(max(requests, 1)):
            alone += _engine_alone(host, tokens, 1)
            one.append(_level(url, body, 1, 1))
        times = [lvl.p50_s for lvl in one]
        levels = [
            ServeLevel(
                1,
                len(times),
                len(times) / sum(times),
                statistics.median(times),
                _percentile(times, 0.95),
            )
        ]
        levels += [_level(url, body, c, max(requests, c)) for c in CONCURRENCY if c > 1]
    finally:
        server.stop()
        host.stop()
    note = f"{info.name}, compute {info.compute_dtype} on {info.device}, vision cache warm"
    return ServeReport(tokens, statistics.median(alone), levels, note)


def _engine_alone(host: Any, tokens: int, runs: int) -> list[float]:
    """Seconds of the same request through the engine thread, no HTTP (``runs`` of them)."""
    from lfmdesk.core import GenerationStats
    from lfmdesk.core.serve._host import Failed

    sampling = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_tokens=tokens)
    request = ChatRequest.single(PROMPT, [load_image(_picture())], sampling=sampling)
    times: list[float] = []
    for _run in range(runs):
        done = threading.Event()

        def deliver(event: object, done: threading.Event = done) -> None:
            if isinstance(event, (GenerationStats, Failed)):
                done.set()

        began = time.perf_counter()
        host.submit(request, threading.Event(), deliver)
        done.wait()
        times.append(time.perf_counter() - began)
    return times


def serve_report(report: ServeReport) -> str:
    """The ``--serve`` table."""
    lines = [
        f"lfmdesk serve: one image question, {report.tokens} forced tokens per answer",
        f"  engine alone (no HTTP)   {report.engine_alone_s:.3f} s per request (median)",
        f"  {'concurrency':>11} {'requests':>9} {'req/s':>8} {'p50':>8} {'p95':>8}",
    ]
    lines += [
        f"  {lvl.concurrency:>11} {lvl.requests:>9} {lvl.requests_per_s:>8.2f} "
        f"{lvl.p50_s:>7.3f}s {lvl.p95_s:>7.3f}s"
        for lvl in report.levels
    ]
    lines.append(f"  server / engine alone at concurrency 1: {report.overhead:.3f}  (goal <= 1.05)")
    lines.append(f"  {report.note}")
    return "\n".join(lines)
