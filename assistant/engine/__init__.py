"""The grounded answer engine: composes answers from the manual's structure and retrieved lines, no LLM.

Every sentence it writes is a template filled with unit names, position names and verbatim manual lines, so
it cannot say anything the manual does not. Questions about structure (heads, positions, reporting lines,
where a position sits, objectives, history, the document itself) are answered from the parsed `Manual`;
"who handles X" questions from the retrieved function lines. It declines when the question asks for a kind
of information no MOF holds (`corpus/scope.json`), names a unit the manual does not have, or when retrieval
support is weak.

Read it in this order:

- ``engine.py``     `GroundedEngine.answer`: analyse once, decline up front, then the routing table `ROUTES`
- ``query.py``      the analysis of a question (`Query`, `analyse`, which manuals it is about) and intent cues
- ``catalog.py``    the units and positions of the served manuals and the names a question may use for them
- ``decline.py``    what no MOF holds (`corpus/scope.json`) and units the manuals lack
- ``document.py``   the manual itself (code, version, dates, authorisation, purpose)
- ``history.py``    the change history
- ``structure.py``  heads, reporting lines, positions, groups, objectives, functions
- ``duties.py``     "who handles X": duty lines, the calibrated support check, the composed answer
- ``common.py``     `Draft`, citations, dates, lists, quotes, the plain decline
"""

from assistant.engine.catalog import Catalog
from assistant.engine.common import Draft, Lang
from assistant.engine.decline import ScopeTopic, load_scope
from assistant.engine.engine import ROUTES, GroundedEngine
from assistant.engine.query import Query, leftover_topic

__all__ = [
    "ROUTES",
    "Catalog",
    "Draft",
    "GroundedEngine",
    "Lang",
    "Query",
    "ScopeTopic",
    "leftover_topic",
    "load_scope",
]
