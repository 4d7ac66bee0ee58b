"""Loading from the Hugging Face hub or a local folder, with user errors instead of tracebacks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mia_kd.errors import ConfigError

T = TypeVar("T")


def looks_like_path(name: str) -> bool:
    """A folder, or written as one: such a name is never a hub id (``org/name``), so a missing one is an error."""
    return name.startswith((".", "/", "~")) or Path(name).expanduser().is_dir()


def load_pretrained(loader: Callable[..., T], name: str, *, what: str, **kwargs: Any) -> T:
    """``loader(name, **kwargs)`` (a ``from_pretrained``), turning a missing model into one clear line."""
    if looks_like_path(name) and not Path(name).expanduser().is_dir():
        raise ConfigError(f"{what} {name!r} does not exist; give the folder a model was saved to (save_pretrained) "
                          "or a hub id such as gpt2")
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
