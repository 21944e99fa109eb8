"""Write report files: atomically to a local folder (temporary file, then rename), or to s3://bucket/prefix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

S3_SCHEME = "s3://"
STDOUT_DIR = "-"  # --output-dir -: findings.json to stdout, nothing written to disk
CONTENT_TYPES = {".json": "application/json", ".html": "text/html; charset=utf-8",
                 ".sarif": "application/sarif+json", ".md": "text/markdown; charset=utf-8"}


def _umask() -> int:
    """The process umask (read by setting it, then restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes, private: bool = False) -> None:
    """Write `data` to `path` so a reader sees the old file or the new one, never half of one.

    The file gets 0666 less the umask, as open() would give it; `private` (a facts file: full policies) 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600 if private else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

    def write(self, url: str, data: bytes) -> None:
        """Put `data` at s3://bucket/key; a failure raises UsageError naming the URL and the AWS error."""
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


def write_output(dest: str, data: bytes, s3: S3Writer | None = None) -> None:
    """Write one report file to a local path (atomically) or to an s3:// URL."""
    if is_s3(dest):
        (s3 or S3Writer()).write(dest, data)
    else:
        write_atomic(Path(dest), data)
