"""Errors that carry one sentence a user can act on."""


class AssistantError(Exception):
    """Base class: the message says what is wrong and what to do."""


class IngestError(AssistantError):
    """A corpus file could not be read as text."""


class IndexMissingError(AssistantError):
    """No usable index: run ``make index``."""


class IndexMismatchError(AssistantError):
    """The index was built with another model, dimension or chromadb version."""


class StoreUnavailableError(AssistantError):
    """The Chroma server cannot be reached."""


class InvalidQuestionError(AssistantError):
    """The question is empty, too long or not text."""
