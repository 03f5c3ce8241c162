"""Command line: ``python -m assistant {inspect,prepare-model,index,search,ask,feedback}``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.settings import Settings


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def cmd_inspect(args: argparse.Namespace, settings: Settings) -> int:
    """Print the parsed manual(s) as JSON or as a readable outline."""
    from assistant.ingest import corpus_files, load_file
    from assistant.parse import parse_document

    path = Path(args.path) if args.path else settings.corpus_dir
    files = corpus_files(path) if path.is_dir() else [path]
    manuals = []
    for f in files:
        try:
            manuals.append(parse_document(load_file(f)))
        except AssistantError as exc:
            print(f"error: {exc}", file=sys.stderr)
    if not manuals:
        print("error: no readable manual found.", file=sys.stderr)
        return 1
    if args.json:
        dicts = [m.to_inspect_dict() for m in manuals]
        # One manual keeps the single-manual schema; several are listed, each in that same schema.
        _print_json(dicts[0] if len(dicts) == 1 else {"manuals": dicts})
        return 0
    for m in manuals:
        print(f"{m.title}  [{m.code}]  versión {m.version}, vigente desde {m.effective_date}")
        print(f"Autorizado por: {m.authorized_by}   (fuente: {m.source})")
        for w in m.warnings:
            print(f"  ! {w}")
        for u in m.units:
            depth = 0
            parent = u.parent
            while parent:
                depth += 1
                parent = next((x.parent for x in m.units if x.name == parent), None)
            pad = "  " * depth
            print(f"\n{pad}■ {u.name}  — jefatura: {u.head or '—'}")
            if u.positions:
                print(f"{pad}  Puestos: {', '.join(u.positions)}")
            if u.objective:
                print(f"{pad}  Objetivo: {u.objective}")
            for fn in u.functions:
                print(f"{pad}  {fn.numeral:>5}. {fn.text}")
        if m.history:
            print("\nModificaciones:")
            for h in m.history:
                print(f"  v{h.version} ({h.date}):")
                for c in h.changes:
                    print(f"      · {c}")
    return 0


def cmd_prepare_model(args: argparse.Namespace, settings: Settings) -> int:
    """Build the default embedding model folder offline (no-op when ready)."""
    from assistant.embed import prepare

    prepare(settings.embedding)
    return 0


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    """Build or update the index with a progress bar."""
    from tqdm import tqdm

    from assistant.indexer import build_index

    bar = tqdm(total=0, unit="chunk", desc="embedding", disable=args.quiet)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    manifest, report = build_index(settings, rebuild=args.rebuild, progress=progress)
    bar.close()
    for e in report.errors:
        print(f"skipped: {e}", file=sys.stderr)
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(
        f"index ready: {manifest.chunks} chunks from {len(manifest.manuals)} manual(s), "
        f"model {manifest.model} ({manifest.dimension}-d), build {manifest.build}"
    )
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    """Show the retrieved chunks for a question."""
    from assistant.chain import Assistant

    assistant = Assistant.from_settings(settings)
    hits = assistant.retriever.search(
        args.question,
        k=args.k,
        unit=args.unit,
        section=args.section,
        mode=args.mode,
        manual=assistant.manual_ids(args.manual),
    )
    if args.json:
        _print_json(
            [
                {
                    "id": h.chunk.id,
                    "score": round(h.score, 4),
                    "dense": round(h.dense, 4),
                    "lexical": round(h.lexical, 4),
                    **h.chunk.metadata(),
                    "text": h.chunk.text,
                }
                for h in hits
            ]
        )
        return 0
    for rank, h in enumerate(hits, 1):
        where = " · ".join(x for x in (h.chunk.unit, h.chunk.section, h.chunk.numeral) if x)
        print(f"{rank}. [{h.score:.3f}] {where}\n   {h.chunk.text}")
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    """Answer a question with citations."""
    from assistant.chain import Assistant

    if args.engine:
        settings.answer.engine = args.engine
    assistant = Assistant.from_settings(settings)
    answer = assistant.ask(args.question, manual=args.manual)
    if args.json:
        _print_json(answer.model_dump(mode="json"))
        return 0
    print(answer.answer)
    if answer.citations:
        print()
        for c in answer.citations:
            manual = f"{c.manual_code} v{c.version}" if c.manual_code else c.manual
            where = " · ".join(x for x in (manual, c.unit, c.section, c.numeral) if x)
            print(f"  [{where}] «{c.quote}»")
    note = f", fallback: {answer.fallback_reason}" if answer.fallback_reason else ""
    print(f"\n({answer.engine}, {answer.latency_ms:.0f} ms{note})", file=sys.stderr)
    return 0


def cmd_feedback(args: argparse.Namespace, settings: Settings) -> int:
    """Export 👎 feedback as evaluation questions."""
    from assistant.feedback import FeedbackStore, feedback_url

    store = FeedbackStore(feedback_url(settings))
    count = store.export(Path(args.out))
    print(f"wrote {count} question(s) to {args.out}")
    return 0


def cmd_diff(args: argparse.Namespace, settings: Settings) -> int:
    """Print the structural diff between two versions of one manual (readable text, or JSON)."""
    from assistant.diff import diff_manuals, render_text
    from assistant.ingest import SUPPORTED, corpus_files, load_file
    from assistant.parse import parse_document
    from assistant.versions import by_code

    paths = [Path(x) for x in args.corpus] if args.corpus else [settings.corpus_dir]
    manuals = []
    for path in paths:
        # A folder's data files (expected diffs, glossaries) are not manuals; a file named on its own is read.
        files = [f for f in corpus_files(path) if f.suffix.lower() in SUPPORTED] if path.is_dir() else [path]
        for f in files:
            try:
                manuals.append(parse_document(load_file(f)))
            except AssistantError as exc:
                print(f"skipped: {exc}", file=sys.stderr)
    wanted = " ".join(args.code.split())
    groups = by_code(manuals)
    versions = groups.get(wanted) or next((g for g in groups.values() if g[0].id == wanted), None)
    if not versions:
        known = ", ".join(groups) or "none"
        where = ", ".join(map(str, paths))
        print(f"error: no manual with code {wanted!r} in {where} (codes: {known}).", file=sys.stderr)
        return 1
    numbers = sorted({m.version for m in versions if m.version is not None})

    def pick(number: int) -> Any:
        found = next((m for m in versions if m.version == number), None)
        if found is None:
            print(f"error: {wanted} has no version {number} (versions: {numbers}).", file=sys.stderr)
        return found

    old, new = pick(args.from_version), pick(args.to_version)
    if old is None or new is None:
        return 1
    diff = diff_manuals(old, new)
    print(diff.to_json() if args.json else render_text(diff))
    return 0


def cmd_insight(args: argparse.Namespace, settings: Settings) -> int:
    """Insight over the question log and the feedback (``insight --help`` for its options)."""
    from assistant.insight import run_insight, run_purge

    if args.insight_action == "purge":
        return run_purge(settings, args.before)
    return run_insight(settings, args.since, as_json=args.json, html_path=args.html)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate for tests)."""
    p = argparse.ArgumentParser(prog="python -m assistant", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("inspect", help="print the parsed manual")
    s.add_argument("path", nargs="?", help="a manual file or folder (default: the corpus)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("prepare-model", help="build the embedding model folder offline")
    s.set_defaults(func=cmd_prepare_model)

    s = sub.add_parser("index", help="build or update the index from the corpus")
    s.add_argument("--rebuild", action="store_true", help="re-embed everything into a fresh build")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_index)

    s = sub.add_parser("search", help="show retrieved chunks")
    s.add_argument("question")
    s.add_argument("--k", type=int, default=5)
    s.add_argument("--unit")
    s.add_argument(
        "--section", choices=["funciones", "objetivo", "organigrama", "modificaciones", "documento", "texto"]
    )
    s.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    s.add_argument("--manual", help="only this manual (its code, e.g. '901 0905', or its gerencia)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("ask", help="answer a question with citations")
    s.add_argument("question")
    s.add_argument("--engine", choices=["grounded", "llm"])
    s.add_argument("--manual", help="only this manual (its code, e.g. '901 0905', or its gerencia)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("feedback", help="feedback tools")
    fsub = s.add_subparsers(dest="feedback_command", required=True)
    e = fsub.add_parser("export", help="write 👎 answers as evaluation questions (JSON Lines)")
    e.add_argument("--out", required=True)
    e.set_defaults(func=cmd_feedback)

    s = sub.add_parser("insight", help="what was asked, what went unanswered, what got 👎 (question log)")
    s.add_argument("--since", default="30d", help="30d, 12w, 24h, an ISO date, or 'all' (default 30d)")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument("--html", type=Path, help="write a self-contained HTML report (charts inline) here")
    isub = s.add_subparsers(dest="insight_action")
    purge = isub.add_parser("purge", help="delete logged questions older than a date")
    purge.add_argument("--before", required=True, help="an ISO date (2025-01-31) or a period (90d)")
    s.set_defaults(func=cmd_insight)

    s = sub.add_parser("diff", help="what changed between two versions of a manual")
    s.add_argument("code", help="the manual's code, e.g. '901 0905'")
    s.add_argument("--from", dest="from_version", type=int, required=True, help="the older version number")
    s.add_argument("--to", dest="to_version", type=int, required=True, help="the newer version number")
    s.add_argument(
        "--corpus", action="append", help="a folder or manual file to read (repeatable; default: the corpus)"
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_diff)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors print one sentence and exit 1."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args, Settings()))
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # "… | head": the reader left. Point stdout at /dev/null so the flush at exit does not raise again
        # (the recipe of the Python docs on SIGPIPE), and exit as a process killed by SIGPIPE does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
