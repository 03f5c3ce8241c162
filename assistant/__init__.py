"""MOF assistant: cited answers about a Manual de Organización y Funciones."""

__version__ = "0.1.0"
