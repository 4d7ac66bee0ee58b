"""Data sources, registered in :data:`SOURCES` by file name (``python_docs.py`` is ``"python-docs"``).

Importing this package registers the built-in sources; a new source is one file here plus one import.
"""

from mia_kd.data.sources import files, hf, python_docs
from mia_kd.data.sources._base import SOURCES, Source, SourceOptions

__all__ = ["SOURCES", "Source", "SourceOptions", "files", "hf", "python_docs"]
