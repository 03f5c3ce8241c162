"""Bounded load behaviour of the served chat: a full queue turns users away cleanly, then serves again.

The full 50-user run is a benchmark (``benchmarks/load_ui.py``); this test only checks the overflow rule
with a tiny queue and a deliberately slow fake assistant, in well under a minute.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.net import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))

pytestmark = pytest.mark.server

ANSWER_DELAY_S = 1.5
USERS = 8


def _slow_assistant() -> Any:
    from fakes_ui import FakeAssistant

    class SlowAssistant(FakeAssistant):
        def ask(self, question: str, history: list[tuple[str, str]] | None = None) -> Any:
            time.sleep(ANSWER_DELAY_S)
            return super().ask(question, history)

    return SlowAssistant()


def test_full_queue_rejects_with_a_message_and_the_app_keeps_serving(tmp_path):
    from gradio_client import Client

    from assistant.settings import Settings
    from assistant.ui import build_app, serve

    port = free_port()
    settings = Settings(
        ui={
            "host": "127.0.0.1",
            "port": port,
            "feedback_db": tmp_path / "fb.sqlite3",
            "concurrency_limit": 1,
            "max_queue": 1,
        }
    )
    app = build_app(_slow_assistant(), settings, stream_delay_s=0)
    serve(app, settings, prevent_thread_lock=True, environ={})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        clients = [Client(url, verbose=False, download_files=False) for _ in range(USERS)]
        outcomes: list[tuple[str, str]] = []
        lock = threading.Lock()
        barrier = threading.Barrier(USERS)

        def user(client: Any) -> None:
            barrier.wait(timeout=30)
            try:
                result = client.predict("¿Quién atiende las quejas?", api_name="/chat")
                outcome = ("ok", str(result)[-200:])
            except Exception as exc:  # the rejection arrives as a client exception with the server's message
                outcome = ("rejected", f"{type(exc).__name__}: {exc}")
            with lock:
                outcomes.append(outcome)

        started = time.monotonic()
        threads = [threading.Thread(target=user, args=(c,), daemon=True) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=ANSWER_DELAY_S * USERS + 30)
        elapsed = time.monotonic() - started

        assert len(outcomes) == USERS, "some users never got a reply"
        ok = [o for kind, o in outcomes if kind == "ok"]
        rejected = [o for kind, o in outcomes if kind == "rejected"]
        assert ok, outcomes  # the running job and the queued one are answered
        assert rejected, outcomes  # the others are turned away…
        assert all("queue is full" in r.lower() for r in rejected), rejected  # …with a message saying why
        assert len(ok) <= 1 + settings.ui.max_queue + 1  # running + queued (+1 for one that slipped in late)
        assert elapsed < ANSWER_DELAY_S * USERS + 20  # rejections are immediate, not after a wait

        # Once the burst is over the app serves again.
        again = clients[0].predict("¿Quién atiende las quejas?", api_name="/chat")
        assert "Atención al Cliente" in str(again)
        for c in clients:
            c.close()
    finally:
        app.close()
