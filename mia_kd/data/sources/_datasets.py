"""Reading through Hugging Face ``datasets``, shared by the ``files`` and ``hf`` sources.

Every failure of ``datasets.load_dataset`` becomes one :class:`~mia_kd.errors.DataError` line (the
original exception stays attached as ``__cause__`` for debugging).
"""

from __future__ import annotations

import tempfile
from typing import Any

from mia_kd.errors import DataError

__all__ = ["load_split", "text_column"]


def _first_line(exc: BaseException) -> str:
    """``Type: first line`` of the innermost cause (wrappers like DatasetGenerationError say little)."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _hint(exc: BaseException) -> str:
    """The fix, where the failure says what it is."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    # Python's codecs raise UnicodeDecodeError; pyarrow's CSV reader says "Invalid UTF8 sequence".
    not_utf8 = isinstance(exc, UnicodeDecodeError) or "invalid utf8" in str(exc).lower()
    return f"; {_NOT_UTF8}" if not_utf8 else ""


_NOT_UTF8 = "re-save it as UTF-8"


def load_split(
    what: str, key: str, *, cache_dir: str | None = None, temporary: bool = False, **kwargs: Any
) -> Any:
    """``datasets.load_dataset(**kwargs)`` held in memory; a failure is a ``DataError`` naming ``key``.

    ``what`` says what was read (a path, a dataset name) in the message. ``cache_dir`` None is
    ``datasets``' default cache. With ``temporary``, the Arrow files ``datasets`` writes while building go
    to a temporary folder removed afterwards, so reading a local file leaves nothing behind
    (``keep_in_memory`` keeps the table usable after that).
    """
    import datasets  # heavy; imported only when a source is actually read

    def load(directory: str | None) -> Any:
        # datasets logs its own error before raising (an unreadable Parquet file's schema): the DataError below
        # says it in one line, so its log would only add lines (and tracebacks through handlers gone stale).
        verbosity = datasets.logging.get_verbosity()
        datasets.logging.set_verbosity(datasets.logging.CRITICAL)
        try:
            return datasets.load_dataset(cache_dir=directory, keep_in_memory=True, **kwargs)
        # datasets, fsspec, pyarrow and the hub client raise many unrelated types; to the user each one
        # means "this data cannot be read", and the original is kept as __cause__.
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{key}: cannot read {what}: {_first_line(exc)}{_hint(exc)}") from exc
        finally:
            datasets.logging.set_verbosity(verbosity)

    if not temporary:
        return load(cache_dir)
    with tempfile.TemporaryDirectory(prefix="mia_kd-datasets-") as directory:
        return load(directory)


def text_column(dataset: Any, column: str, what: str, key: str, where: dict[str, Any] | None = None) -> list[str]:
    """The values of ``column`` as strings (a missing value becomes ``""``); errors name ``key``.

    ``dataset`` is a ``datasets.Dataset``; ``key`` is the config key of the column option. ``where``
    ``{column: value}`` keeps only the rows whose columns equal those values (e.g. ``{label: 1}``).
    """
    names = list(dataset.column_names)
    for name in [column, *(where or {})]:
        if name not in names:
            option = key if name == column else key.rsplit(".", 1)[0] + ".where"
            raise DataError(f"{option}: no column {name!r} in {what}; columns: {', '.join(names)}")
    values = _pylist(dataset, column, what, key)
    if where:
        keep = [all(row) for row in zip(*(
            [value == wanted for value in _pylist(dataset, name, what, key)] for name, wanted in where.items()
        ), strict=True)]
        values = [value for value, kept in zip(values, keep, strict=True) if kept]
        if not values:
            raise DataError(f"{key.rsplit('.', 1)[0]}.where: no row of {what} has {where}")
    bad = next((value for value in values if value is not None and not isinstance(value, str)), None)
    if bad is not None:
        raise DataError(
            f"{key}: column {column!r} in {what} holds non-string values "
            f"({type(bad).__name__}, e.g. {bad!r}); name a column of texts"
        )
    return ["" if value is None else value for value in values]


def _pylist(dataset: Any, column: str, what: str, key: str) -> list[Any]:
    """The column as Python values. JSON readers keep invalid UTF-8 bytes in string columns, and pyarrow
    only fails when a value is decoded: that is a reading error, named like the others."""
    try:
        return dataset.data.column(column).to_pylist()
    except UnicodeDecodeError as exc:
        row = next(i for i, value in enumerate(dataset.data.column(column)) if not _decodes(value))
        raise DataError(
            f"{key}: column {column!r} of row {row + 1} in {what} is not valid UTF-8 ({exc.reason} at byte "
            f"{exc.start} of the value); {_NOT_UTF8}"
        ) from exc


def _decodes(value: Any) -> bool:
    try:
        value.as_py()
    except UnicodeDecodeError:
        return False
    return True
