"""The HTTP API beside the web chat: OpenAI-compatible chat completions with citations, ``/api/ask`` and an
optional MCP tool, all on the chat's own FastAPI app and port (``assistant.ui.serve`` mounts Gradio on it).

- ``POST /v1/chat/completions`` speaks the OpenAI schema (streamed as server-sent events or not), so Open
  WebUI, LibreChat, bot frameworks and the official ``openai`` clients can use the assistant. The reply keeps
  what makes an answer trustworthy: ``citations`` (the verbatim manual lines) and ``answered`` are extra
  top-level fields, and the message text ends with the same "Fuentes · Sources" list as the chat.
- ``GET /v1/models`` lists the one model; ``POST /api/ask`` returns the ``Answer`` itself as JSON.
- Every call needs ``Authorization: Bearer <token>``; each token has its own rate limit (a token bucket).
- With ``api.mcp_enabled``, Gradio's MCP server offers ``ask_manual(question, manual?)`` under ``/mcp``,
  behind the same tokens.

The assistant's ``ask`` blocks (model, index) and runs in a bounded thread pool; the event loop only parses,
checks and writes.
"""

import hashlib
import hmac
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.errors import (
    AssistantError,
    IndexMismatchError,
    IndexMissingError,
    InvalidQuestionError,
    StoreUnavailableError,
)
from assistant.models import Answer, Citation, Manual
from assistant.settings import ApiSettings, Settings

log = logging.getLogger(__name__)

TOKENS_ENV = "ASSISTANT_API__TOKENS"
TOKENS_FILE_ENV = "ASSISTANT_API__TOKENS_FILE"
MCP_PATH = "/mcp"
# Heading of the sources list that ends every message; an assistant turn sent back as history is cut here.
SOURCES_HEADING = "**Fuentes · Sources**"
FALLBACK_NOTE = (
    "LLM no disponible; respuesta del motor fundamentado · LLM unavailable; grounded-engine answer"
)
# Roughly how many words each streamed chunk carries; the answer is complete before the first one is sent.
STREAM_WORDS_PER_CHUNK = 6
NO_TOKENS = (
    "The API is off because no token is configured: set ASSISTANT_API__TOKENS='name:token' (several as "
    "'name:token,name2:token2') or ASSISTANT_API__TOKENS_FILE to a file of name:token lines, then restart."
)
PROTECTED_PREFIXES = ("/v1/", "/api/", MCP_PATH + "/")


class ApiConfigError(AssistantError):
    """The API's tokens are malformed."""


class ApiError(Exception):
    """An error answered as OpenAI's ``{"error": {...}}`` body with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        """The error as a JSON response."""
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


# ---------------------------------------------------------------- tokens and rate limits


def load_tokens(api: ApiSettings) -> dict[str, str]:
    """Tokens by client name, from ``api.tokens`` ("name:token,…") and ``api.tokens_file`` lines."""
    entries: list[tuple[str, str]] = []
    raw = api.tokens.get_secret_value().strip()
    if raw:
        entries += [
            (f"{TOKENS_ENV} entry {i}", e.strip()) for i, e in enumerate(raw.split(","), 1) if e.strip()
        ]
    if api.tokens_file is not None:
        if not api.tokens_file.is_file():
            raise ApiConfigError(
                f"The API tokens file {api.tokens_file} does not exist: create it with one name:token per "
                f"line, or unset {TOKENS_FILE_ENV}."
            )
        lines = api.tokens_file.read_text(encoding="utf-8").splitlines()
        entries += [
            (f"{api.tokens_file} line {i}", line.strip())
            for i, line in enumerate(lines, 1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
    tokens: dict[str, str] = {}
    seen: set[str] = set()
    for where, entry in entries:
        name, sep, token = entry.partition(":")
        name, token = name.strip(), token.strip()
        # Name the place, never the content: the entry holds a secret.
        if not sep or not name or not token:
            raise ApiConfigError(f"{where} is not of the form name:token; fix it and restart.")
        if name in tokens:
            raise ApiConfigError(f"{where} repeats the client name {name!r}; give each token its own name.")
        if token in seen:
            raise ApiConfigError(
                f"{where} repeats a token of another client; give each client its own token."
            )
        if len(token) < 16:
            log.warning("API token %r is shorter than 16 characters: use a long random one", name)
        tokens[name] = token
        seen.add(token)
    return tokens


class TokenBucket:
    """Per-client token buckets: ``burst`` requests at once, refilled at ``rate_per_minute``."""

    def __init__(
        self, rate_per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Store the limits; buckets start full."""
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name → (tokens left, when counted)
        self._lock = threading.Lock()

    def take(self, name: str) -> float:
        """Spend one request of ``name``'s bucket: 0.0 when allowed, else the seconds until one is back."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(name, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1.0 - tokens) / self.rate


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class Gatekeeper:
    """Bearer-token check (constant time over every configured token) and the per-token rate limit."""

    def __init__(self, tokens: Mapping[str, str], limits: TokenBucket) -> None:
        """Keep only the tokens' digests, so equal-length values are compared whatever was sent."""
        self._table = [(name, _digest(token)) for name, token in tokens.items()]
        self.limits = limits

    @property
    def configured(self) -> bool:
        """Whether any token is configured."""
        return bool(self._table)

    def client(self, authorization: str | None) -> str:
        """The client name of a valid ``Authorization`` header; raises a 401 ``ApiError`` otherwise."""
        if not self._table:
            raise ApiError(401, NO_TOKENS, "authentication_error", "no_token_configured")
        scheme, _, presented = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise ApiError(
                401,
                "Missing bearer token: send the header 'Authorization: Bearer <token>'.",
                "authentication_error",
                "missing_token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        sent = _digest(presented.strip())
        found: str | None = None
        for name, digest in self._table:  # every entry is compared: the time does not depend on which matched
            if hmac.compare_digest(digest, sent):
                found = name
        if found is None:
            raise ApiError(
                401,
                "Invalid bearer token.",
                "authentication_error",
                "invalid_token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return found

    def admit(self, authorization: str | None) -> str:
        """``client`` plus one request from its rate limit; raises 401 or 429 ``ApiError``."""
        name = self.client(authorization)
        wait = self.limits.take(name)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            log.info("api rate limit reached client=%s retry_after=%d", name, seconds)
            raise ApiError(
                429,
                f"Rate limit reached for this token; retry in {seconds} s.",
                "rate_limit_error",
                "rate_limit_exceeded",
                headers={"Retry-After": str(seconds)},
            )
        return name


# ---------------------------------------------------------------- request and response shapes


class ChatMessage(BaseModel):
    """One message of an OpenAI chat; ``content`` is text or a list of content parts."""

    model_config = ConfigDict(extra="allow")

    role: str = Field(description="system, developer, user, assistant or tool")
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text (text parts joined; images and other parts ignored)."""
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return "\n".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


class StreamOptions(BaseModel):
    """OpenAI's ``stream_options``."""

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat-completions request (other OpenAI fields are accepted and ignored)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "model": "mof-assistant",
                    "messages": [{"role": "user", "content": "¿Quién controla los valúos de los activos?"}],
                }
            ]
        },
    )

    model: str = Field("mof-assistant", description="The model listed by GET /v1/models.")
    messages: list[ChatMessage] = Field(
        min_length=1, description="The conversation; the last user message is the question."
    )
    stream: bool = Field(False, description="Server-sent events in OpenAI's chat.completion.chunk format.")
    stream_options: StreamOptions | None = None
    manual: str | None = Field(
        None, description="Not OpenAI: answer from this manual only (its code, e.g. '901 0905')."
    )


class ApiCitation(BaseModel):
    """A verbatim manual line supporting the answer."""

    manual: str = Field(description="The manual's code, e.g. '901 0905'.")
    version: int | None = Field(description="The manual's version (edition).")
    gerencia: str = ""
    unit: str | None
    section: str = Field(description="funciones, objetivo, organigrama, modificaciones, documento or texto.")
    numeral: str | None = Field(description="The function's numeral, e.g. 'ii'.")
    quote: str = Field(description="The line, verbatim from the manual.")


class CompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class CompletionChoice(BaseModel):
    index: int = 0
    message: CompletionMessage
    finish_reason: Literal["stop"] = "stop"


class Usage(BaseModel):
    """Word counts, not model tokens: the grounded engine has no tokenizer of its own."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """OpenAI's chat.completion, with ``answered`` and ``citations`` added."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    answered: bool = Field(description="False when the manual does not cover the question.")
    citations: list[ApiCitation]


class AskRequest(BaseModel):
    """A question for ``POST /api/ask``."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"question": "Who heads the Sucursal Paseo?", "history": []}]}
    )

    question: str
    history: list[tuple[str, str]] | None = Field(None, description="Earlier (question, answer) turns.")
    manual: str | None = Field(None, description="Answer from this manual only (its code).")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "mof-assistant"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Bad request: not JSON, no question, an unknown manual",
        401: "No token configured, or a missing or wrong bearer token",
        413: "The question or the body is too long",
        422: "The body does not have the documented fields",
        429: "This token's rate limit is reached (see Retry-After)",
        503: "The index is unavailable",
    }.items()
}


# ---------------------------------------------------------------- answers as the API shows them


def _find_manual(manuals: Sequence[Manual], key: str) -> Manual | None:
    return next((m for m in manuals if key in (m.id, m.code)), None)


def api_citation(citation: Citation, manuals: Sequence[Manual] = ()) -> ApiCitation:
    """A citation with its manual's code and version (looked up by id when the engine left them out)."""
    manual = _find_manual(manuals, citation.manual)
    version = citation.version if citation.version is not None else (manual.version if manual else None)
    return ApiCitation(
        manual=citation.manual_code or (manual.code if manual else "") or citation.manual,
        version=version,
        gerencia=citation.gerencia or (manual.gerencia if manual else ""),
        unit=citation.unit,
        section=citation.section,
        numeral=citation.numeral,
        quote=citation.quote,
    )


def citation_text(citation: ApiCitation) -> str:
    """``901 0905 v10 · Área de Ventas · función ii``, as the chat labels a citation."""
    edition = " ".join(b for b in (citation.manual, f"v{citation.version}" if citation.version else "") if b)
    bits = [edition] if edition else []
    bits.append(citation.unit or citation.gerencia or citation.manual)
    if citation.section == "funciones" and citation.numeral:
        bits.append(f"función {citation.numeral}")
    else:
        bits.append(citation.section.capitalize())
        if citation.numeral:
            bits.append(citation.numeral)
    return " · ".join(bits)


def render_text(answer: Answer, citations: Sequence[ApiCitation]) -> str:
    """The answer as the chat shows it, in Markdown: the text, a fallback note, then the cited lines."""
    parts = [answer.answer.strip()]
    if answer.fallback_reason:
        parts.append(f"_ⓘ {FALLBACK_NOTE}_")
    if citations:
        lines = [f"{n}. {citation_text(c)} — “{c.quote}”" for n, c in enumerate(citations, 1)]
        parts.append(SOURCES_HEADING + "\n" + "\n".join(lines))
    return "\n\n".join(parts)


def history_of(messages: Sequence[ChatMessage], max_turns: int) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last message, which must be the user's) and the earlier (user, assistant) turns."""
    if messages[-1].role != "user":
        raise ApiError(400, "The last message must be the user's question (role 'user').", param="messages")
    turns: list[tuple[str, str]] = []
    asked: str | None = None
    for message in messages[:-1]:
        if message.role == "user":
            asked = message.text()
        elif message.role == "assistant" and asked is not None:
            # Our own sources list is not part of what was said; the condensation reads the answer text.
            said = message.text().split("\n\n" + SOURCES_HEADING, 1)[0]
            turns.append((asked, said))
            asked = None
    return messages[-1].text(), turns[-max_turns:] if max_turns else []


def _words(text: str) -> int:
    return len(text.split())


def _stream_pieces(text: str, words: int = STREAM_WORDS_PER_CHUNK) -> list[str]:
    tokens = re.findall(r"\S+\s*|\s+", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)] or [""]


# ---------------------------------------------------------------- the app


@dataclass
class Asked:
    """One answered request: who asked, the answer and how the API shows it."""

    client: str
    answer: Answer
    citations: list[ApiCitation]
    text: str


class Service:
    """The API's behaviour over one assistant: checks, the thread pool, and error translation."""

    def __init__(self, assistant: Any, settings: Settings, gate: Gatekeeper) -> None:
        """Keep references; ``assistant`` is already loaded (anything with ``manuals`` and ``ask``)."""
        self.assistant = assistant
        self.settings = settings
        self.gate = gate
        self.limiter = anyio.CapacityLimiter(api_workers(settings))
        # The question log (assistant/querylog.py); set by the server, shared with the chat.
        self.query_log: Any | None = None

    def check_body(self, request: Request) -> None:
        """Refuse a body announced larger than ``max_body_bytes`` before reading it."""
        limit = self.settings.api.max_body_bytes
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise ApiError(413, f"The request body is too large ({length} bytes; the maximum is {limit}).")

    def check_question(self, question: str, param: str) -> None:
        limit = self.settings.answer.max_question_chars
        if len(question) > limit:
            raise ApiError(
                413,
                f"La pregunta es demasiado larga ({len(question)} caracteres; máximo {limit}). "
                f"/ The question is too long ({len(question)} characters; the maximum is {limit}).",
                param=param,
                code="question_too_long",
            )

    async def ask(
        self, client: str, question: str, history: list[tuple[str, str]], manual: str | None
    ) -> Asked:
        """Run the blocking ``ask`` in the pool; the assistant's errors become 4xx/503 ``ApiError``s."""
        only = {"manual": manual} if manual else {}  # an engine without the parameter still answers the rest
        call = partial(self.assistant.ask, question, history=history, **only)
        try:
            answer: Answer = await anyio.to_thread.run_sync(call, limiter=self.limiter)
        except InvalidQuestionError as exc:
            raise ApiError(400, str(exc), code="invalid_question") from exc
        except (StoreUnavailableError, IndexMissingError, IndexMismatchError) as exc:
            log.error("api: assistant unavailable: %s", exc)
            raise ApiError(
                503, str(exc), "server_error", "index_unavailable", headers={"Retry-After": "5"}
            ) from exc
        except AssistantError as exc:  # e.g. a manual filter that names no served manual
            raise ApiError(400, str(exc), code="bad_request") from exc
        except Exception as exc:
            log.exception("api: unexpected error while answering")
            raise ApiError(500, "Internal error; please try again.", "server_error") from exc
        citations = [api_citation(c, self.assistant.manuals) for c in answer.citations]
        self._log(client, answer)
        return Asked(client, answer, citations, render_text(answer, citations))

    def _log(self, client: str, answer: Answer) -> None:
        if self.query_log is not None:
            # The client's name is kept as the user only when logins are on, as for the chat.
            user = client if self.settings.ui.auth_enabled else None
            self.query_log.record(answer, user=user, channel="api")
        what = (
            f"question={answer.question!r}"
            if self.settings.log_questions
            else f"chars={len(answer.question)}"
        )
        log.info(
            "api answered client=%s %s lang=%s answered=%s citations=%d latency_ms=%.0f",
            client, what, answer.language, answer.answered, len(answer.citations), answer.latency_ms,
        )  # fmt: skip


def api_workers(settings: Settings) -> int:
    """Questions the API answers at once: the setting, else 1 for the grounded engine and 8 for an LLM one."""
    if settings.api.workers is not None:
        return settings.api.workers
    return 8 if settings.answer.engine == "llm" else 1


class TokenGuard:
    """ASGI middleware: requests under ``prefix`` (the MCP server) need a valid token and pass its limit."""

    def __init__(self, app: ASGIApp, gate: Gatekeeper, prefix: str) -> None:
        self.app, self.gate, self.prefix = app, gate, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == self.prefix or path.startswith(self.prefix + "/"):
            try:
                self.gate.admit(Headers(scope=scope).get("authorization"))
            except ApiError as exc:
                await exc.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str | None]:
    """(status, one sentence, parameter) for a body FastAPI could not read."""
    errors = list(exc.errors())
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return 400, f"The request body is not valid JSON{f': {detail}' if detail else ''}.", None
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    where = ".".join(loc)
    msg = first.get("msg", "invalid value")
    if not loc:
        return (
            400,
            f"The request body must be a JSON object (Content-Type: application/json) with the documented fields ({msg}).",
            None,
        )
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return 422, f"Field '{where}': {msg}{more}.", where


def create_api(  # noqa: C901 -- the routes are closures over the service; each is small
    assistant: Any,
    settings: Settings,
    *,
    clock: Callable[[], float] = time.monotonic,
    query_log: Any | None = None,
) -> FastAPI:
    """The FastAPI app with the API routes (and the MCP server when enabled); Gradio is mounted on it later.

    Raises ``ApiConfigError`` for malformed tokens, before anything is served.
    """
    api = settings.api
    tokens = load_tokens(api)
    gate = Gatekeeper(tokens, TokenBucket(api.rate_per_minute, api.burst, clock))
    service = Service(assistant, settings, gate)
    service.query_log = query_log
    if tokens:
        log.info("API on: %d token(s) configured (%s)", len(tokens), ", ".join(sorted(tokens)))
    else:
        log.warning("API calls are refused until a token is configured: set %s", TOKENS_ENV)
    created = int(time.time())

    app = FastAPI(
        title="Asistente del MOF · MOF assistant API",
        version="1",
        description=(
            "Cited answers about the served *Manuales de Organización y Funciones*. "
            "`/v1/chat/completions` follows OpenAI's schema (any OpenAI client works) and adds `answered` and "
            "`citations`; `/api/ask` returns the assistant's full answer. Every call needs "
            "`Authorization: Bearer <token>` (tokens: `ASSISTANT_API__TOKENS`)."
        ),
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.gate = gate
    app.state.service = service
    bearer = HTTPBearer(auto_error=False, description="A token from ASSISTANT_API__TOKENS")

    async def authorised(request: Request, _: Annotated[Any, Depends(bearer)]) -> str:
        service.check_body(request)
        return gate.admit(request.headers.get("authorization"))

    # The client's name, once its token and rate limit are checked.
    Client = Annotated[str, Depends(authorised)]

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI reads the body before the dependencies run: an unauthenticated caller learns nothing
        # about the body's shape, only that it needs a token.
        try:
            gate.client(request.headers.get("authorization"))
        except ApiError as denied:
            return denied.response()
        status, message, param = _validation_message(exc)
        return ApiError(status, message, param=param).response()

    @app.get("/v1/models", response_model=ModelList, responses=ERRORS, tags=["OpenAI-compatible"])
    async def list_models(client: Client) -> ModelList:
        """The one model this server offers."""
        return ModelList(data=[ModelCard(id=api.model_name, created=created)])

    @app.get("/v1/models/{model}", response_model=ModelCard, responses=ERRORS, tags=["OpenAI-compatible"])
    async def get_model(model: str, client: Client) -> ModelCard:
        """One model by name."""
        if model != api.model_name:
            raise ApiError(
                404, f"The model '{model}' does not exist; use '{api.model_name}'.", code="model_not_found"
            )
        return ModelCard(id=api.model_name, created=created)

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "The answer"}},
        tags=["OpenAI-compatible"],
    )
    async def chat_completions(body: ChatCompletionRequest, client: Client) -> Any:
        """Answer the last user message, following the conversation before it, with cited manual lines.

        ``choices[0].message.content`` is the answer as the chat shows it (ending with the sources); the
        extra fields ``answered`` and ``citations`` carry the same in structured form (in streaming, on the
        last chunk before ``data: [DONE]``).
        """
        if body.model != api.model_name:
            raise ApiError(
                404, f"The model '{body.model}' does not exist; use '{api.model_name}'.", param="model",
                code="model_not_found",
            )  # fmt: skip
        question, history = history_of(body.messages, api.max_history_turns)
        service.check_question(question, "messages")
        asked = await service.ask(client, question, history, body.manual)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        now = int(time.time())
        usage = Usage(
            prompt_tokens=_words(question),
            completion_tokens=_words(asked.text),
            total_tokens=_words(question) + _words(asked.text),
        )
        citations = [c.model_dump() for c in asked.citations]
        if not body.stream:
            return JSONResponse(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": now,
                    "model": api.model_name,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": asked.text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage.model_dump(),
                    "answered": asked.answer.answered,
                    "citations": citations,
                }
            )
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": now,
                "model": api.model_name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        async def events() -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            for piece in _stream_pieces(asked.text):
                yield chunk({"content": piece})
            yield chunk({}, "stop", answered=asked.answer.answered, citations=citations)
            if include_usage:
                payload = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": now,
                    "model": api.model_name,
                    "choices": [],
                    "usage": usage.model_dump(),
                }
                yield f"data: {json.dumps(payload)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/api/ask", response_model=Answer, responses=ERRORS, tags=["Assistant"])
    async def ask(body: AskRequest, client: Client) -> JSONResponse:
        """The assistant's answer with everything it knows: citations, sources, language, engine, timing."""
        service.check_question(body.question, "question")
        history = list(body.history or [])[-api.max_history_turns :] if api.max_history_turns else []
        asked = await service.ask(client, body.question, history, body.manual)
        return JSONResponse(asked.answer.model_dump(mode="json"))

    if api.mcp_enabled:
        mount_mcp(app, service, settings)
        app.add_middleware(TokenGuard, gate=gate, prefix=MCP_PATH)
    return app


# ---------------------------------------------------------------- MCP


def mount_mcp(app: FastAPI, service: Service, settings: Settings) -> None:
    """Gradio's MCP server with the one tool ``ask_manual``, on its own small Blocks under ``/mcp``.

    A Blocks of its own keeps the chat's events (and their per-session state) out of the tool list.
    """
    import gradio as gr

    limit = settings.answer.max_question_chars

    def ask_manual(question: str, manual: str = "") -> str:
        """Answer a question about the organisation's Manual de Organización y Funciones (MOF), in Spanish or English, with the manual's lines quoted verbatim.

        The answer names the responsible unit and the position that heads it, and ends with the cited lines
        (manual code, version, unit, section, numeral and the quote). When the manual does not cover the
        question, it says so.

        Args:
            question: The question, in Spanish or English, e.g. "¿Quién controla los valúos de los activos extraordinarios?".
            manual: Optional. A manual's code (e.g. "901 0905") to answer from that manual only; empty for all manuals.
        """
        if not isinstance(question, str) or len(question) > limit:
            raise gr.Error(f"The question must be text of at most {limit} characters.")
        only = {"manual": manual} if manual and manual.strip() else {}
        try:
            answer: Answer = service.assistant.ask(question, history=[], **only)
        except AssistantError as exc:
            raise gr.Error(str(exc)) from exc
        citations = [api_citation(c, service.assistant.manuals) for c in answer.citations]
        service._log("mcp", answer)
        return render_text(answer, citations)

    with gr.Blocks(title="MOF assistant", analytics_enabled=False) as tools:
        gr.api(ask_manual, api_name="ask_manual", queue=False)
    gr.mount_gradio_app(
        app,
        tools,
        path=MCP_PATH,
        server_name=settings.ui.host,
        server_port=settings.ui.port,
        mcp_server=True,
        footer_links=[],
        show_error=True,
        ssr_mode=False,
        pwa=False,
        enable_monitoring=False,
        run_history=False,
    )
    if tools.mcp_error:
        raise ApiConfigError(
            f"The MCP server could not start ({tools.mcp_error}); set ASSISTANT_API__MCP_ENABLED=false."
        )
