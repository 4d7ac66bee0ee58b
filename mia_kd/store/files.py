"""Where a sweep's files live (docs/architecture.md §7): a local folder, a mount every node sees, or any
pyarrow filesystem URL.

The results store, the manifest, Tune's state and the saved students go to ``out`` (``s3://``, ``gs://``,
``hdfs://``, ``file://`` or a path), written by whichever node runs the trial. The Optuna journal is an
append-only file the driver alone writes; on a URL it is kept in a local work folder beside the driver
and copied to ``out/optuna/journal.log`` after every trial (and fetched back from there on resume).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from mia_kd.errors import ConfigError

JOURNAL = "optuna/journal.log"
MANIFEST = "sweep.json"


@dataclass(frozen=True)
class SweepStorage:
    """A sweep's folder ``out`` on its filesystem: the one place outside the Parquet tables that reads and
    writes a sweep's files (manifest, reference point, saved students, the Optuna journal). Paths given to
    the methods (``rel``) are relative to ``out``."""

    out: str  # as the user gave it: an absolute local path, or a URL
    fs: pafs.FileSystem
    base: str  # ``out``'s path inside ``fs``

    @classmethod
    def parse(cls, out: str) -> SweepStorage:
        """``out`` as the user gave it (a path or a URL); a URL pyarrow cannot open is a :class:`ConfigError`."""
        if "://" in out:
            try:
                fs, base = pafs.FileSystem.from_uri(out)
            except (pa.ArrowInvalid, ValueError, OSError) as exc:
                raise ConfigError(f"--out {out!r}: {str(exc).splitlines()[0]} (give a path or an s3://, gs:// URL)") from None
            return cls(out=out.rstrip("/"), fs=fs, base=base.rstrip("/"))
        path = str(Path(out).expanduser().resolve())
        return cls(out=path, fs=pafs.LocalFileSystem(), base=path)

    @property
    def local(self) -> Path | None:
        """``out`` as a local path, or None for a URL (even ``file://``: treated like any remote store)."""
        return None if "://" in self.out else Path(self.out)

    def url(self, rel: str) -> str:
        """``out/rel`` as the user would write it (a path or a URL)."""
        return f"{self.out}/{rel}"

    def path(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def read_text(self, rel: str) -> str | None:
        if not self.exists(rel):
            return None
        with self.fs.open_input_stream(self.path(rel)) as f:
            return f.read().decode("utf-8")

    def write_text(self, rel: str, text: str) -> None:
        """Write atomically where the filesystem can rename (local, mounts); plainly on object stores,
        whose single-object writes are atomic already."""
        final = self.path(rel)
        self.fs.create_dir(final.rsplit("/", 1)[0], recursive=True)
        tmp = f"{final.rsplit('/', 1)[0]}/.{final.rsplit('/', 1)[1]}.{uuid.uuid4().hex[:8]}.tmp"
        with self.fs.open_output_stream(tmp) as f:
            f.write(text.encode("utf-8"))
        self.fs.move(tmp, final)

    def upload_dir(self, local_dir: Path, rel: str) -> None:
        """Copy a local folder to ``out/rel``, replacing what was there."""
        if self.exists(rel):
            self.fs.delete_dir(self.path(rel))
        self.fs.create_dir(self.path(rel), recursive=True)
        pafs.copy_files(str(local_dir), self.path(rel), source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.fs)

    def subdirs(self, rel: str) -> list[str]:
        """Names of the folders directly under ``out/rel`` (hidden ones left out)."""
        if not self.exists(rel):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path(rel)))
        return [i.base_name for i in infos if i.type == pafs.FileType.Directory and not i.base_name.startswith(".")]

    def delete_dir(self, rel: str) -> None:
        self.fs.delete_dir(self.path(rel))

    def journal_file(self) -> Path:
        """The Optuna journal the driver appends to: in ``out`` when local, else in a local work folder
        (one per URL), fetched from ``out`` if this machine has none yet."""
        if self.local is not None:
            return self.local / JOURNAL
        digest = hashlib.sha256(self.out.encode()).hexdigest()[:16]
        path = Path.home() / ".cache" / "mia_kd" / "journals" / digest / "journal.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() and self.exists(JOURNAL):
            with self.fs.open_input_stream(self.path(JOURNAL)) as f:
                path.write_bytes(f.read())
        return path

    def push_journal(self) -> None:
        """Copy the local journal to ``out`` (URL stores only)."""
        if self.local is None and self.journal_file().exists():
            self.write_text(JOURNAL, self.journal_file().read_text())
