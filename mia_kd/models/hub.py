"""Loading from the Hugging Face hub or a local folder, with user errors instead of tracebacks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mia_kd.errors import ConfigError

T = TypeVar("T")


def load_pretrained(loader: Callable[..., T], name: str, *, what: str, **kwargs: Any) -> T:
    """``loader(name, **kwargs)`` (a ``from_pretrained``), turning a missing model into one clear line."""
    try:
        return loader(name, **kwargs)
    except (OSError, ValueError) as exc:
        if Path(name).exists():
            reason = str(exc).strip().splitlines()[0]
            raise ConfigError(f"{what} {name!r}: cannot load the local folder ({reason})") from None
        raise ConfigError(
            f"{what} {name!r}: not a local folder, and it could not be fetched from the Hugging Face hub "
            "(offline, or an unknown id); give a local path or check the id"
        ) from None
