"""``lfmdesk serve``: the OpenAI-compatible API on this machine's engine.

The engine runs on its own thread (MLX belongs to one thread) behind a bounded queue; uvicorn
answers on another. Safe by default: 127.0.0.1 only, no CORS, images as data URLs only.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from lfmdesk.cli._engine import api_key_from_env
from lfmdesk.cli._output import consume_download
from lfmdesk.core import AppSettings, Engine, ensure_model, resolve_model

__all__ = ["add_serve_parser", "cmd_serve"]


def add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` subcommand."""
    p = sub.add_parser(
        "serve",
        help="serve the model over an OpenAI-compatible API (127.0.0.1 by default)",
        description="Serve the model at http://HOST:PORT/v1 (POST /v1/chat/completions, "
        "GET /v1/models, GET /health) for the openai client and anything that speaks its API. "
        "Requests queue on one engine; sampling fields a request leaves out take the model "
        "card's values.",
    )
    p.add_argument(
        "--model", "-m", help="variant key (4bit..bf16, default 8bit), repo id or folder"
    )
    p.add_argument(
        "--compute",
        choices=("auto", "native", "float32"),
        default="auto",
        help="auto: float32 on CPU (fast with OpenBLAS), as shipped on Apple GPUs",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    key = p.add_mutually_exclusive_group()
    key.add_argument(
        "--api-key-env", metavar="VAR", help="require the API key held in environment variable VAR"
    )
    key.add_argument(
        "--api-key",
        metavar="KEY",
        help="require this API key (visible to other users in ps; prefer --api-key-env)",
    )
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow a non-loopback --host without an API key",
    )
    p.add_argument(
        "--cors",
        metavar="ORIGIN",
        action="append",
        default=[],
        help="let browser pages from ORIGIN call the API (repeatable; off by default)",
    )
    p.add_argument(
        "--allow-image-urls",
        action="store_true",
        help="also fetch http(s) image URLs (data URLs only by default)",
    )
    p.add_argument("--image-url-max-mb", type=int, default=20, help="largest fetched image (MB)")
    p.add_argument("--image-url-timeout", type=float, default=10.0, help="fetch timeout (s)")
    p.add_argument(
        "--max-queue",
        type=int,
        default=16,
        help="requests that may wait for the engine; more get 429 (default 16)",
    )
    p.add_argument("--max-images", type=int, default=8, help="most images per request (default 8)")


def _stop_on_sigterm(stop: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def cmd_serve(args: argparse.Namespace, settings: AppSettings) -> int:
    """Load the model and serve it until Ctrl-C or SIGTERM."""
    from lfmdesk.core._errors import InputError
    from lfmdesk.core.serve._app import ServeOptions, create_app
    from lfmdesk.core.serve._host import EngineThread
    from lfmdesk.core.serve._images import ImagePolicy
    from lfmdesk.core.serve._server import ServerThread, check_exposure

    api_key = args.api_key or (api_key_from_env(args.api_key_env) if args.api_key_env else None)
    check_exposure(args.host, api_key, args.insecure_no_auth)
    if args.max_queue < 0 or args.max_images < 1:
        raise InputError("--max-queue must be 0 or more and --max-images at least 1")
    folder = consume_download(ensure_model(resolve_model(settings.model)))

    def make_engine() -> Engine:
        engine = Engine(compute=args.compute)
        engine.load(folder)
        return engine

    options = ServeOptions(
        api_key=api_key,
        cors_origins=tuple(args.cors),
        max_images=args.max_images,
        images=ImagePolicy(
            args.allow_image_urls, args.image_url_max_mb << 20, args.image_url_timeout
        ),
        aliases=tuple(a for a in {settings.model, str(folder)} if a),
    )
    server = ServerThread(None, args.host, args.port, access_log=True)  # binds before loading
    host = EngineThread(make_engine, max_queue=args.max_queue)
    info = host.start()
    server.app = create_app(host, options)
    stop = threading.Event()
    restore = _stop_on_sigterm(stop)
    try:
        url = server.start()
        auth = "API key required" if api_key else "no API key"
        sys.stderr.write(f"lfmdesk: serving {info.name} at {url} ({auth}); Ctrl-C stops\n")
        sys.stderr.flush()
        while not stop.wait(0.5):
            if not server.is_alive():
                raise InputError("the server stopped unexpectedly")
    except KeyboardInterrupt:
        pass
    finally:
        restore()
        server.stop()
        host.stop()
    sys.stderr.write("lfmdesk: server stopped\n")
    _exit_now(0)
    return 0  # pragma: no cover - only when _exit_now is patched out


def _exit_now(code: int) -> None:
    """End the process without interpreter teardown.

    MLX's CPU streams belong to the engine thread; tearing the interpreter down after that
    thread has used them aborts the process ("terminate called without an active exception",
    exit -6) after a clean stop. Everything is stopped and flushed here, so nothing is lost.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
