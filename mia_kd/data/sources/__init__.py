"""Data sources, registered in :data:`SOURCES` by file name (``python_docs.py`` is ``"python_docs"``).

:data:`SOURCES` finds the source modules of this package itself: a new source is one file here.
"""

from mia_kd.data.sources._base import SOURCES, Source, SourceOptions

__all__ = ["SOURCES", "Source", "SourceOptions"]
