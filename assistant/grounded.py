"""Compatibility: the grounded engine now lives in the `assistant.engine` package."""

from assistant.engine import (
    ROUTES,
    Catalog,
    Draft,
    GroundedEngine,
    Lang,
    Query,
    ScopeTopic,
    leftover_topic,
    load_scope,
)
from assistant.engine.catalog import _Mention
from assistant.engine.query import Query as _Analysis

__all__ = [
    "ROUTES",
    "Catalog",
    "Draft",
    "GroundedEngine",
    "Lang",
    "Query",
    "ScopeTopic",
    "_Analysis",
    "_Mention",
    "leftover_topic",
    "load_scope",
]
