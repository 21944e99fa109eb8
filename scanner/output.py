"""Write report files: atomically to a local folder (temporary file, then rename), or to s3://bucket/prefix.

A run's report set goes to a local folder through a StagedSet (every file first, then all switched in), and a
run holds the folder's OutputLock while it scans and writes, so two runs never mix their files.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

S3_SCHEME = "s3://"
STDOUT_DIR = "-"  # --output-dir -: findings.json to stdout, nothing written to disk
CONTENT_TYPES = {".json": "application/json", ".html": "text/html; charset=utf-8",
                 ".sarif": "application/sarif+json", ".md": "text/markdown; charset=utf-8"}


def _umask() -> int:
    """The process umask (read by setting it, then restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


Data = bytes | Iterable[bytes]  # a file's bytes, whole or in chunks (a report renderer's stream)


def write_chunks(fh: IO[bytes], data: Data) -> None:
    """Write `data` (bytes, or chunks of them) to `fh`."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        fh.write(data)
        return
    for chunk in data:
        fh.write(chunk)


def write_atomic(path: Path, data: Data, private: bool = False) -> None:
    """Write `data` (bytes, or chunks of them) to `path` so a reader sees the old file or the new one, never half
    of one; when producing the chunks fails, nothing is written.

    The file gets 0666 less the umask, as open() would give it; `private` (a facts file: full policies) 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write_chunks(fh, data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600 if private else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


log = logging.getLogger("audit_bedrock")

LOCK_NAME = ".audit-bedrock.lock"
STAGING_PREFIX = ".audit-bedrock-staging-"
KEPT_PREFIX = "unfinished-"
STALE_STAGING_SECONDS = 600  # a staging folder untouched this long belongs to no live run


class OutputLock:
    """An exclusive fcntl lock on LOCK_NAME in an output folder, held from before the scan until the reports are
    written; a second run into the same folder is refused (UsageError) instead of mixing its files in.

    Taking the lock removes the staging folders a killed run left (remove_stale_staging).
    The folder is created for the lock; release() removes the lock file, and the folder too when this run
    created it and left nothing in it (a run refused after the lock leaves no trace)."""

    def __init__(self, folder: Path, flag: str) -> None:
        from audit_bedrock.errors import UsageError

        self.path = folder / LOCK_NAME
        self._made = [p for p in (folder, *folder.parents) if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # the holder before us may have removed the file we opened: then a newer one may be locked by another
            if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            raise UsageError(f"{flag} {folder}: another audit-bedrock run is writing there (it holds {self.path}); "
                             "wait for it to finish or choose another folder") from None
        self._fd: int | None = fd
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.removed = remove_stale_staging(folder)

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: no other run can hold this file meanwhile
        os.close(self._fd)
        self._fd = None
        for made in self._made:  # innermost first
            try:
                made.rmdir()
            except OSError:  # not empty (reports were written) or not ours to remove
                break


def remove_stale_staging(folder: Path) -> list[Path]:
    """Remove the staging folders a killed run (SIGKILL, power loss) left in `folder`; the folders removed.

    Called only by the holder of the folder's lock, so no other locked run is writing there; a staging folder
    touched in the last STALE_STAGING_SECONDS is left alone all the same (a caller of write_reports that took
    no lock may be writing it)."""
    cutoff = time.time() - STALE_STAGING_SECONDS
    removed = []
    for path in folder.glob(f"{STAGING_PREFIX}*"):
        try:
            if path.is_dir() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path)
                removed.append(path)
        except OSError as exc:  # not ours to remove: left, and said
            log.warning("could not remove the stale staging folder %s: %s", path, exc.strerror or exc)
    return removed


class StagedSet:
    """One run's report files, written into a staging folder inside the output folder and switched in (os.replace
    per file) only when every one was written. On failure the previous set stays as it was and the files that
    could be written are kept in a folder named unfinished-TIME."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
        os.chmod(self.staging, 0o777 & ~_umask())
        self.names: list[str] = []

    def write(self, name: str, data: Data) -> None:
        """Write one file (bytes, or a renderer's chunks) into the staging folder."""
        write_atomic(self.staging / name, data)
        self.names.append(name)

    def blocked(self) -> str:
        """'' or why a destination cannot be replaced by a file (a folder there, say): checked before any switch."""
        for name in self.names:
            dest = self.folder / name
            if dest.is_dir() and not dest.is_symlink():
                return f"cannot write {dest}: a folder is in the way"
        return ""

    def commit(self) -> list[str]:
        """Switch every staged file in; the paths written."""
        out = []
        for name in self.names:
            os.replace(self.staging / name, self.folder / name)
            out.append(str(self.folder / name))
        self.staging.rmdir()
        return out

    def keep(self) -> Path:
        """Keep what was written (nothing is switched in): the staging folder renamed unfinished-TIME."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = self.folder / f"{KEPT_PREFIX}{stamp}"
        try:
            kept.mkdir()  # an empty folder of that name, which rename replaces; taken: keep the staging name
            os.replace(self.staging, kept)
        except OSError:
            return self.staging
        return kept

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def check_local_dir(folder: Path, flag: str) -> None:
    """Raise UsageError unless files can be created in `folder` (it may not exist yet); nothing is left behind.

    The probe is a temporary folder made in the nearest existing ancestor: permission bits alone say nothing
    for root, or on a read-only or virtual file system such as /proc.
    """
    from audit_bedrock.errors import UsageError

    probe = folder.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{flag} {folder}: cannot write there: {probe} is not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".audit-bedrock-probe.", dir=probe))
    except OSError as exc:
        raise UsageError(f"{flag} {folder}: cannot write there: {exc.strerror or exc} ({probe})") from None


def is_s3(dest: str) -> bool:
    """True when `dest` is an s3://bucket/key URL."""
    return dest.startswith(S3_SCHEME)


def split_s3(url: str) -> tuple[str, str]:
    """(bucket, key) of s3://bucket/key; the key may be empty or a prefix."""
    from audit_bedrock.errors import UsageError

    bucket, _, key = url[len(S3_SCHEME):].partition("/")
    if not is_s3(url) or not bucket:
        raise UsageError(f"'{url}' is not an s3://bucket/prefix URL")
    return bucket, key


def join(dest: str, name: str) -> str:
    """`dest`/`name` for a local folder or an s3:// prefix."""
    if is_s3(dest):
        split_s3(dest)
        return f"{dest.rstrip('/')}/{name}"
    return str(Path(dest) / name)


class S3Writer:
    """Puts report files into S3 with one lazily built client (boto3 is imported only when used)."""

    def __init__(self, profile: str | None = None, endpoint_url: str | None = None) -> None:
        self._profile = profile
        self._endpoint_url = endpoint_url
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import boto3
            session = boto3.session.Session(profile_name=self._profile)
            self._client = session.client("s3", endpoint_url=self._endpoint_url)
        return self._client

    def write(self, url: str, data: bytes | IO[bytes]) -> None:
        """Put `data` (bytes, or a file read from its current position) at s3://bucket/key; a failure raises
        UsageError naming the URL and the AWS error."""
        from botocore.exceptions import BotoCoreError, ClientError

        from audit_bedrock.aws.errors import error_message
        from audit_bedrock.errors import UsageError

        bucket, key = split_s3(url)
        if not key or key.endswith("/"):
            raise UsageError(f"'{url}' names no object key")
        try:
            self.client().put_object(Bucket=bucket, Key=key, Body=data,
                                     ContentType=CONTENT_TYPES.get(Path(key).suffix, "application/octet-stream"))
        except (ClientError, BotoCoreError) as exc:
            raise UsageError(f"cannot write {url}: {error_message(exc)}") from None
