"""Writing files: atomically, and a failed write as one line naming the file and the cause, whatever
raised it (Python's I/O or ``torch.save``, which wraps the failure of its C++ writer in a
``RuntimeError`` without the errno)."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import shutil
from collections.abc import Iterator
from pathlib import Path

CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is too large (over the file-size limit, ulimit -f)",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
}


class WriteError(OSError):
    """A file that could not be written: ``str()`` is the whole story."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def _guess(path: Path, written: int | None) -> tuple[int | None, str]:
    """The likely cause of a write that failed without an errno (``torch.save``'s RuntimeError)."""
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY and written is not None and written >= limit:
        return errno.EFBIG, CAUSES[errno.EFBIG]
    with contextlib.suppress(OSError):
        if shutil.disk_usage(path.parent).free < 1 << 20:
            return errno.ENOSPC, CAUSES[errno.ENOSPC]
    return None, "the write failed (is the disk full?)"


def _errno(err: BaseException | None) -> OSError | None:
    """The first OSError with an errno in ``err``'s chain (torch.save's RuntimeError hides it there)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno is not None:
            return err
        err = err.__cause__ or err.__context__
    return None


def write_error(path: Path, err: BaseException, partial: Path | None = None) -> WriteError:
    """``err``, raised while writing ``path`` (through the temporary file ``partial``), as a WriteError."""
    if isinstance(err, WriteError):
        return err
    found = _errno(err)
    if found is not None:
        code, cause = found.errno, CAUSES.get(found.errno) or found.strerror or str(found)
    else:
        written = None
        with contextlib.suppress(OSError):
            written = (partial or path).stat().st_size
        code, cause = _guess(path, written)
    return WriteError(code or 0, cause, str(path))


def is_write_failure(err: BaseException) -> bool:
    """Whether ``err`` is a failed write rather than a bug: any OSError, or torch's stream writer."""
    text = str(err)
    return isinstance(err, OSError) or (
        isinstance(err, RuntimeError)
        and any(s in text for s in ("inline_container", "PytorchStreamWriter", "file write failed"))
    )


@contextlib.contextmanager
def writing(path: Path, partial: Path | None = None) -> Iterator[None]:
    """Turn a failed write inside the block into a WriteError naming ``path``; anything else passes."""
    try:
        yield
    except Exception as err:
        if not is_write_failure(err):
            raise
        raise write_error(path, err, partial) from err


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``path`` via a temporary file and a rename: a crash or a full disk leaves the previous file
    (a concurrent reader sees the old file or the whole new one) and no temporary file; a failed write
    is a WriteError naming ``path`` and the cause."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with writing(path, partial=tmp):
            if isinstance(data, bytes):
                tmp.write_bytes(data)
            else:
                tmp.write_text(data, encoding="utf-8")
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
