"""``python_docs`` (also ``python-docs``): English sentences from the running Python's own documentation.

The corpus is built at run time, offline, from two parts of the standard library, in a fixed order:

1. the help topics in ``pydoc_data/topics.py`` (the ``topics`` dict literal, read with :mod:`ast`,
   topics in sorted order);
2. the docstrings of modules, classes and functions in the standard library's ``.py`` files (sorted
   walk; each file parsed with :mod:`ast`, never imported). Tests, site-packages, the IDLE/Tk GUI code,
   codec tables (``encodings``) and the deprecated ``lib2to3`` and ``distutils`` are skipped: they add
   little prose and much parse time.

Each text is cut into sentences and only clean English prose is kept: a sentence starts with a capital
letter, ends with a full stop, has between ``min_words`` and ``max_words`` words, at least 90% of them
purely alphabetic, and no code or markup (``>>>``, ``::``, reST roles, backticks, quotes, calls, URLs,
dotted names, brackets, operators). Duplicates are removed (first occurrence kept). On CPython 3.11.7 this
gives 6,774 sentences in two to three seconds, nearly all of it :func:`ast.parse`.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import os
import re
import sysconfig
import warnings
from collections.abc import Iterator

from pydantic import Field, model_validator

from mia_kd.data.sources._base import SOURCES, Source, SourceOptions
from mia_kd.errors import DataError

__all__ = ["PythonDocs", "docstrings", "sentences", "topics"]

# Directories (by name, at any depth) whose files are not read; see the module docstring for why.
_SKIP_DIRS = frozenset(
    {
        "__pycache__", "site-packages", "test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3",
        "distutils", "encodings", "ensurepip", "pydoc_data",
    }
)
_DOC_NODES = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_BLOCK_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")

_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_LIST_MARKER = re.compile(r"^\s*(?:\d+\.|[*+•-])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
# Code or markup anywhere in a sentence: doctest prompts, reST literals and roles, calls, URLs, dotted
# names (``os.path``, also "e.g."), brackets, operator characters, and quotes, which the help topics and
# many docstrings put around code ("with", 'localhost'); an apostrophe inside a word is fine.
_MARKUP = re.compile(
    r">>>|::|`|:[a-z]+:|\w\(|https?:|www\.|\.\w|\.\.|--|[{}\[\]<>=_*#|\\/@$%^~+&\"“”‘]|(?<![A-Za-z])'"
)
_WORD = re.compile(r"[A-Za-z]+(?:['’-][A-Za-z]+)*")
_WORD_PUNCT = ",;:()\"'“”‘’!?"


@SOURCES.register(aliases=("python-docs",))
class PythonDocs(Source):
    """Clean English sentences from the running Python's help topics and standard-library docstrings.

    Registered as ``"python_docs"`` (its file name) and as ``"python-docs"``, its key before keys became file
    names. Its record ids are made from ``"python-docs"`` whichever spelling a config uses (see
    :attr:`id_namespace`), so the quickstart's split did not change with the key.
    """

    class Options(SourceOptions):
        min_words: int = Field(6, ge=1, description="shortest sentence kept, in words")
        max_words: int = Field(40, ge=1, description="longest sentence kept, in words")

        @model_validator(mode="after")
        def _ordered(self) -> PythonDocs.Options:
            if self.max_words < self.min_words:
                raise ValueError(f"max_words must be at least min_words ({self.min_words})")
            return self

    options: Options

    @property
    def id_namespace(self) -> str:
        """``"python-docs"``: the name this source's record ids have always been hashed with."""
        return "python-docs"

    def load(self) -> list[str]:
        """The sentences, deduplicated, topics first then docstrings in sorted file order."""
        stdlib = sysconfig.get_paths()["stdlib"]
        texts = [*topics(stdlib), *docstrings(stdlib)]
        return sentences(texts, min_words=self.options.min_words, max_words=self.options.max_words)


def topics(stdlib: str) -> list[str]:
    """The help topics of ``pydoc_data/topics.py`` under ``stdlib``, sorted by topic name."""
    path = os.path.join(stdlib, "pydoc_data", "topics.py")
    try:
        with open(path, "rb") as handle:
            tree = ast.parse(handle.read(), filename=path)
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"data.source: python-docs cannot read {path}: {exc}") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "topics" for target in node.targets
        ):
            value = ast.literal_eval(node.value)
            return [value[name] for name in sorted(value)]
    raise DataError(f"data.source: python-docs found no 'topics' dict in {path}")


def _source_files(stdlib: str) -> Iterator[str]:
    """The standard library's ``.py`` files in sorted order, skipping :data:`_SKIP_DIRS`."""
    for dirpath, dirnames, filenames in os.walk(stdlib):
        dirnames[:] = sorted(name for name in dirnames if name not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def _collect(statements: list[ast.stmt], out: list[str]) -> None:
    """Append the docstrings of classes and functions defined anywhere in ``statements``."""
    for statement in statements:
        if isinstance(statement, _DOC_NODES):
            doc = ast.get_docstring(statement)
            if doc:
                out.append(doc)
        for field in _BLOCK_FIELDS:
            block = getattr(statement, field, None)
            if block:
                _collect(block, out)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (as :mod:`timeit` does), restoring its previous state.

    Parsing 8 MB of source allocates millions of short-lived AST nodes; each one triggers collections
    that scan the whole heap, which in a process that has imported scikit-learn or datasets doubles the
    build time. AST trees hold no reference cycles, so reference counting frees them all anyway.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def docstrings(stdlib: str) -> list[str]:
    """Module, class and function docstrings of the standard library under ``stdlib``, in file order.

    Files that do not parse (or cannot be read) are skipped. Each tree is dropped as soon as its
    docstrings are taken: keeping them all alive makes the walk three times slower.
    """
    out: list[str] = []
    with warnings.catch_warnings(), _gc_paused():
        # Old escape sequences in some stdlib files raise SyntaxWarning/DeprecationWarning on parse.
        warnings.simplefilter("ignore")
        for path in _source_files(stdlib):
            try:
                with open(path, "rb") as handle:
                    tree = ast.parse(handle.read(), filename=path)
            except (OSError, SyntaxError, ValueError):
                continue
            doc = ast.get_docstring(tree)
            if doc:
                out.append(doc)
            _collect(tree.body, out)
    return out


def _is_prose(sentence: str, min_words: int, max_words: int) -> bool:
    """Whether ``sentence`` is a clean English sentence (see the module docstring)."""
    if not (sentence[:1].isupper() and sentence.endswith(".")) or _MARKUP.search(sentence[:-1]):
        return False
    words = sentence[:-1].split()
    if not min_words <= len(words) <= max_words:
        return False
    alphabetic = sum(1 for word in words if _WORD.fullmatch(word.strip(_WORD_PUNCT)))
    return alphabetic >= 0.9 * len(words) and any(word.islower() for word in words)


def sentences(texts: list[str], *, min_words: int = 6, max_words: int = 40) -> list[str]:
    """Clean prose sentences of ``texts`` (one space between words), deduplicated, in order."""
    out: list[str] = []
    seen: set[str] = set()
    for text in texts:
        for paragraph in _PARAGRAPH.split(text):
            flat = " ".join(_LIST_MARKER.sub("", paragraph).split())
            for sentence in _SENTENCE_END.split(flat):
                if sentence not in seen and _is_prose(sentence, min_words, max_words):
                    seen.add(sentence)
                    out.append(sentence)
    return out
