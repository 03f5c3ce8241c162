"""A scripted LLM server on 127.0.0.1 that speaks OpenAI chat completions and Ollama's /api/chat.

Use it in-process (``with StubLLMServer(replies=[...]) as stub: stub.base_url``) or as a process:
``python tests/openai_stub_server.py --port 8123 --reply "..." [--delay 5] [--status 500] [--echo]``.

Behaviour is set by attributes that tests may change between calls:
``replies`` (cycled), ``delay_s`` (sleep before answering), ``status`` (an HTTP error code instead
of an answer) and ``echo`` (answer with the last user message). Every request body is recorded.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StubLLMServer:
    """An in-process, threaded HTTP server answering with scripted replies."""

    def __init__(
        self,
        replies: list[str] | None = None,
        *,
        delay_s: float = 0.0,
        status: int | None = None,
        echo: bool = False,
        port: int = 0,
    ) -> None:
        self.replies = list(replies or ["ok"])
        self.delay_s = delay_s
        self.status = status
        self.echo = echo
        self.requests: list[dict[str, Any]] = []
        self._i = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True  # a slow reply must not block shutdown
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``.../v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def ollama_url(self) -> str:
        """The Ollama-style base URL (no ``/v1``)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StubLLMServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="stub-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StubLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def next_reply(self, body: dict[str, Any]) -> str:
        """The scripted reply for this request (thread-safe)."""
        with self._lock:
            self.requests.append(body)
            if self.echo:
                users = [m for m in body.get("messages", []) if m.get("role") == "user"]
                content = users[-1].get("content", "") if users else ""
                return content if isinstance(content, str) else json.dumps(content)
            reply = self.replies[self._i % len(self.replies)]
            self._i += 1
            return reply


def _handler_for(stub: StubLLMServer) -> type[BaseHTTPRequestHandler]:  # noqa: C901 -- a test stub: one branch per scripted behaviour
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

        def _send_json(self, code: int, payload: Any, content_type: str = "application/json") -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send_json(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})
            elif self.path.rstrip("/") == "/api/tags":
                self._send_json(200, {"models": [{"name": "stub", "model": "stub"}]})
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._send_json(400, {"error": {"message": "bad JSON"}})
                return
            if stub.delay_s:
                time.sleep(stub.delay_s)
            try:
                if stub.status is not None:
                    stub.requests.append(body)
                    self._send_json(stub.status, {"error": {"message": "scripted failure", "type": "server"}})
                elif self.path.rstrip("/") in ("/v1/chat/completions", "/chat/completions"):
                    self._openai(body, stub.next_reply(body))
                elif self.path.rstrip("/") == "/api/chat":
                    self._ollama(body, stub.next_reply(body))
                else:
                    self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (e.g. its timeout fired); nothing to answer

        def _openai(self, body: dict[str, Any], reply: str) -> None:
            model = body.get("model", "stub")
            created = int(time.time())
            if not body.get("stream"):
                self._send_json(
                    200,
                    {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion",
                        "created": created,
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )
                return
            # Server-sent events, one word per chunk, then [DONE].
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            words = reply.split(" ")
            for i, word in enumerate(words):
                delta = {"content": word if i == 0 else " " + word}
                if i == 0:
                    delta["role"] = "assistant"
                chunk = {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            last = {
                "id": "chatcmpl-stub",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
            self.close_connection = True

        def _ollama(self, body: dict[str, Any], reply: str) -> None:
            model = body.get("model", "stub")
            stamp = "2024-01-01T00:00:00Z"
            final = {
                "model": model,
                "created_at": stamp,
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "stop",
                "prompt_eval_count": 1,
                "eval_count": 1,
            }
            if not body.get("stream", True):
                final["message"]["content"] = reply
                self._send_json(200, final)
                return
            # Ollama streams newline-delimited JSON objects.
            lines = [
                {"model": model, "created_at": stamp, "message": {"role": "assistant", "content": reply}},
                final,
            ]
            data = "".join(json.dumps(x) + "\n" for x in lines).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main() -> None:
    """Run the stub as a process until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reply", action="append", default=None, help="a scripted reply (repeatable)")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--status", type=int, default=None)
    parser.add_argument("--echo", action="store_true")
    args = parser.parse_args()
    stub = StubLLMServer(args.reply, delay_s=args.delay, status=args.status, echo=args.echo, port=args.port)
    print(f"stub LLM listening on {stub.base_url}", flush=True)
    try:
        stub._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stub._server.server_close()


if __name__ == "__main__":
    main()
