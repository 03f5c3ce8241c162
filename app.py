"""Serve the web chat and its API: settings → assistant (loaded once) → Gradio app + API → one server."""

from __future__ import annotations

import logging
import os
import sys

from assistant.errors import AssistantError
from assistant.settings import Settings


def main() -> int:
    """Start the server; a configuration problem prints one sentence and exits with status 2."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Offline deployment: no telemetry calls. Set before gradio is imported, which reads it.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from assistant.startup import skip_gradio_stub_generation

    skip_gradio_stub_generation()  # gradio rewrites its components' .pyi stubs at every import: 1-2 s
    from assistant.api import load_tokens
    from assistant.chain import Assistant
    from assistant.ui import build_app, make_auth, serve

    settings = Settings()
    try:
        make_auth(settings.ui)  # refuse a login misconfiguration before the model is loaded
        load_tokens(settings.api)  # and malformed API tokens
        assistant = Assistant.from_settings(settings)
        serve(build_app(assistant, settings), settings, assistant=assistant)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
