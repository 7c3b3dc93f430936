"""Object store for submitted material and everything derived from it.

Two backends share one interface: :class:`LocalStore` (a folder, the embedded default) and
:class:`S3Store` (any S3 API endpoint). :func:`open_store` picks one from ``KEPU_STORE_URL`` so the
pipeline never branches on where the bytes live.

Keys are POSIX-like paths. A key segment may not start with a dot: dot-names are reserved for the
local backend's sidecars and temporary files, and forbidding them also rules out ``.`` and ``..``.
Keys built from submitter input go through :func:`object_key`, which makes any file name safe.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import mimetypes
import os
import re
import secrets
import shutil
import tempfile
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from kepu.errors import StorageError

if TYPE_CHECKING:
    from kepu.config import Settings

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Every kind of object a submission can own; the role is a folder level in the key.
ROLES: tuple[str, ...] = (
    "video",
    "cover",
    "synopsis",
    "form",
    "attachment",
    "rendition",
    "poster",
    "thumbnail",
    "report",
)

#: Multipart uploads start above this size, in parts of the same size.
MULTIPART_THRESHOLD = 16 * 1024 * 1024

_ID_RE = re.compile(r"[A-Za-z0-9_-]+")
# Characters that are legal in S3 keys but break Windows file systems, shells or URLs when an
# object is later downloaded under its own name.
_UNSAFE_CHARS = re.compile(r'[<>:"|?*\x00]')
# A percent-escape, its hex digits possibly full-width (NFKC turns those into ASCII digits too).
_PERCENT_ESCAPE = re.compile(r"%(?=[0-9A-Fa-f\uff10-\uff19\uff21-\uff26\uff41-\uff46]{2})")
# Leaves room for the local backend's sidecar suffix inside a 255-byte file name.
_MAX_NAME_BYTES = 200
_MAX_KEY_BYTES = 1024
_SIDECAR_SUFFIX = ".sha256"
_COPY_CHUNK = 1 << 20
#: Lifetime of a presigned GET URL: long enough to start a video and seek in it, short enough that a
#: copied link is soon useless. S3 refuses anything above seven days.
PRESIGNED_EXPIRY_S = 600
_PRESIGNED_MAX_S = 7 * 24 * 3600
#: How long an S3 operation keeps retrying while the endpoint is unreachable or overloaded
#: (``KEPU_S3_RETRY_WINDOW_S``): a restart of MinIO or a short network cut is ridden out.
S3_RETRY_WINDOW_S = 120.0
#: Waits between the attempts of one operation; the last one repeats until the window is used up.
S3_RETRY_DELAYS_S: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0)
#: Attempts botocore itself makes per request (quick, jittered); the window above is the long wait.
S3_REQUEST_ATTEMPTS = 3
#: Lifecycle rule ensure_bucket adds so that uploads cut off before completion do not keep their parts.
ABORT_MULTIPART_RULE_ID = "kepu-abort-incomplete-multipart-uploads"
# Error codes of an endpoint that is overloaded or briefly failing, whatever the HTTP status it sends.
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
    }
)


@dataclass(frozen=True)
class StoredObject:
    """An object as the store holds it.

    ``sha256`` is empty when the object was written by something other than kepu and carries no
    recorded digest; a rerun then uploads again instead of trusting an unknown object.
    """

    key: str
    size: int
    sha256: str
    uri: str
    #: When the object was last written, as the store keeps it (to the second on S3); known from :meth:`head`.
    modified: datetime | None = field(default=None, compare=False)


# --------------------------------------------------------------------------------------------------
# Keys


def sha256_file(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    """Hex SHA-256 digest and size of ``path``, read in ``chunk``-sized pieces."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _fold_lookalikes(name: str) -> str:
    """``name`` with every character whose compatibility form is made of ``.``, ``/``, ``\\`` or ``%`` (the
    full-width ``．／＼％``, the dot leaders ``․‥…``) replaced by that form, so it is handled as what it
    turns into wherever the name is NFKC-normalised later (some archivers, some file systems)."""
    out = []
    for ch in name:
        if not ch.isascii():
            folded = unicodedata.normalize("NFKC", ch)
            if folded and not folded.strip("./\\%"):
                ch = folded
        out.append(ch)
    return "".join(out)


def safe_filename(name: str) -> str:
    """A single, harmless key segment made from a submitter's file name.

    Chinese and other Unicode letters are kept (NFC-normalised so the same name typed on macOS and
    Windows gives the same key). Directory parts are dropped, with both ``/`` and ``\\`` taken as
    separators because archives made on Windows carry backslashes, and so are their full-width
    look-alikes. Control and format characters, characters that are unsafe on common file systems,
    percent-escapes (``%2e%2e%2f`` would decode to ``../``) and leading dots are removed, so the result
    can never name a parent folder, a hidden file or a sidecar. An empty result becomes ``file``.
    """
    name = _fold_lookalikes(unicodedata.normalize("NFC", name))
    parts = [p for p in re.split(r"[/\\]", name) if p.strip(" .")]
    base = parts[-1] if parts else ""
    # Category C covers control, format (e.g. RTL overrides that disguise extensions), surrogate,
    # private-use and unassigned code points.
    base = "".join(ch for ch in base if not unicodedata.category(ch).startswith("C"))
    base = _UNSAFE_CHARS.sub("_", base)
    # A key is never URL-decoded by kepu, but a browser or a tool handling the downloaded file might.
    base = _PERCENT_ESCAPE.sub("_", base)
    # Windows drops trailing dots and spaces, and leading dots would make hidden or reserved names.
    base = base.strip().lstrip(". ").rstrip(". ")
    base = _truncate_name(base)
    return base or "file"


def _truncate_name(name: str) -> str:
    """Shorten ``name`` to :data:`_MAX_NAME_BYTES` UTF-8 bytes, keeping a short extension."""
    if len(name.encode("utf-8")) <= _MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode("utf-8")) > 16:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    budget = _MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    cut = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return (cut.rstrip(". ") + suffix).lstrip(".")


def check_id(kind: str, value: str) -> None:
    if not _ID_RE.fullmatch(value):
        raise StorageError(f"invalid {kind} id {value!r}: only letters, digits, '_' and '-' are allowed")


def submission_prefix(campaign_id: str, submission_id: str) -> str:
    """The key prefix (ending in ``/``) under which all objects of one submission live."""
    check_id("campaign", campaign_id)
    check_id("submission", submission_id)
    return f"campaigns/{campaign_id}/submissions/{submission_id}/"


def object_key(campaign_id: str, submission_id: str, role: str, filename: str) -> str:
    """``campaigns/{campaign}/submissions/{submission}/{role}/{safe filename}``."""
    if role not in ROLES:
        raise StorageError(f"unknown object role {role!r}; expected one of {', '.join(ROLES)}")
    return f"{submission_prefix(campaign_id, submission_id)}{role}/{safe_filename(filename)}"


def export_key(campaign_id: str, name: str) -> str:
    """``campaigns/{campaign}/exports/{safe name}``: the latest exports, overwritten by each run."""
    check_id("campaign", campaign_id)
    return f"campaigns/{campaign_id}/exports/{safe_filename(name)}"


def audit_key(campaign_id: str, name: str) -> str:
    """``campaigns/{campaign}/audit/{safe name}``: kept per run (validation results), never overwritten."""
    check_id("campaign", campaign_id)
    return f"campaigns/{campaign_id}/audit/{safe_filename(name)}"


def _check_key(key: str) -> None:
    """Reject keys that could leave the store's root or collide with internal files."""
    if not key or len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        raise StorageError(f"invalid object key {key!r}: empty or longer than {_MAX_KEY_BYTES} bytes")
    if "\\" in key or any(unicodedata.category(ch) == "Cc" for ch in key):
        raise StorageError(f"invalid object key {key!r}: backslash or control character")
    for segment in key.split("/"):
        if not segment or segment.startswith("."):
            raise StorageError(f"invalid object key {key!r}: empty or dot-prefixed segment")


def _check_prefix(prefix: str) -> None:
    if prefix:
        # A prefix is a key, possibly cut in the middle of a segment or ending with "/".
        _check_key(prefix[:-1] if prefix.endswith("/") else prefix)


def _dir_prefix(prefix: str) -> str:
    """Normalise a deletion prefix to a whole folder, so ``s1`` never matches ``s10``."""
    stripped = prefix.strip("/")
    if not stripped:
        raise StorageError("refusing to work on the whole store: prefix is empty")
    _check_key(stripped)
    return stripped + "/"


def _guess_type(key: str) -> str | None:
    return mimetypes.guess_type(key, strict=False)[0]


# --------------------------------------------------------------------------------------------------
# Interface


class ObjectStore(ABC):
    """Where submitted files, renditions and reports are kept."""

    @abstractmethod
    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> StoredObject:
        """Store the file at ``path`` under ``key``, streaming it.

        When an object with the same key, size and SHA-256 is already there nothing is written,
        so a rerun is a no-op.
        """

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> StoredObject:
        """Store ``data`` under ``key``; skipped like :meth:`put_file` when already identical."""

    @abstractmethod
    def head(self, key: str) -> StoredObject | None:
        """The object's size and digest without reading it, or ``None`` when it is missing."""

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    @abstractmethod
    def list_keys(self, prefix: str) -> Iterator[str]:
        """Keys starting with ``prefix`` (a plain string prefix, as in S3), in sorted order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    def delete_prefix_except(self, prefix: str, keep: set[str]) -> list[str]:
        """Delete every object under the folder ``prefix`` whose key is not in ``keep``.

        Used when a submitter re-sends a changed package: objects of files that are gone must
        not linger. ``prefix`` is taken as a whole folder (a trailing ``/`` is implied) and may not
        be empty. Returns the deleted keys.
        """
        folder = _dir_prefix(prefix)
        stale = [key for key in self.list_keys(folder) if key not in keep]
        self._delete_many(stale)
        if stale:
            log.info("deleted %d stale object(s) under %s", len(stale), folder)
        return stale

    def _delete_many(self, keys: list[str]) -> None:
        for key in keys:
            self.delete(key)

    @abstractmethod
    @contextmanager
    def open_local(self, key: str) -> Iterator[Path]:
        """A local path holding the object for the duration of the ``with`` block.

        The path must be treated as read-only: for the local backend it is the stored file itself.
        """

    @abstractmethod
    def download(self, key: str, dest: Path) -> Path:
        """Copy the object to ``dest`` (written atomically, parent folders created)."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """A URI naming the object (``file:///…`` or ``s3://bucket/…``)."""

    def presigned_url(self, key: str, expires_s: int = PRESIGNED_EXPIRY_S) -> str | None:
        """A time-limited URL a browser can GET the object from, or ``None`` when the backend has none.

        The local folder has none: whoever shows the object (the dashboard) serves the file itself.
        """
        _check_key(key)
        return None


def _check_expiry(expires_s: int) -> int:
    if not 1 <= expires_s <= _PRESIGNED_MAX_S:
        raise StorageError(f"presigned URL lifetime {expires_s} s is outside 1 … {_PRESIGNED_MAX_S} s")
    return int(expires_s)


# --------------------------------------------------------------------------------------------------
# Local folder


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _copy_hashing(src: IO[bytes], dst: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while block := src.read(_COPY_CHUNK):
        digest.update(block)
        dst.write(block)
        size += len(block)
    return digest.hexdigest(), size


#: Files under KEPU_HOME hold personal data (records, exports, materials, outgoing mail, keys): owner only.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``mkdir -p`` where every folder it makes is readable by its owner only (0700, whatever the umask)."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # made by another process meanwhile
        os.chmod(folder, PRIVATE_DIR_MODE)
    return path


def open_private(path: Path, mode: str = "wb") -> IO[Any]:
    """A new file readable by its owner only (0600, whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return os.fdopen(fd, mode)


class LocalStore(ObjectStore):
    """Objects as files under ``root``.

    Each object ``a/b`` has a sidecar ``a/.b.sha256`` holding its digest together with the size and
    modification time it was computed for; a sidecar that no longer matches its file (a crash
    between the two writes, or a file replaced by hand) is ignored and the digest recomputed.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        _check_key(key)
        return self.root / key

    @staticmethod
    def _sidecar(path: Path) -> Path:
        return path.with_name(f".{path.name}{_SIDECAR_SUFFIX}")

    def _write_atomic(self, key: str, writer: Callable[[IO[bytes]], tuple[str, int]]) -> tuple[Path, str, int]:
        """Write via ``writer(fileobj) -> (sha256, size)`` to a temp file, then rename into place."""
        path = self._path(key)
        try:
            private_dir(path.parent)
            tmp = path.with_name(f".tmp-{secrets.token_hex(8)}")
            try:
                with open_private(tmp) as fh:
                    sha, size = writer(fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            _fsync_dir(path.parent)
            self._write_sidecar(path, sha)
        except OSError as exc:
            raise StorageError(f"cannot write object {key}: {exc}") from exc
        return path, sha, size

    def _write_sidecar(self, path: Path, sha: str) -> None:
        st = path.stat()
        sidecar = self._sidecar(path)
        tmp = sidecar.with_name(f".tmp-{secrets.token_hex(8)}")
        with open_private(tmp, "w") as fh:
            fh.write(json.dumps({"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
        os.replace(tmp, sidecar)

    def _read_sidecar(self, path: Path, st: os.stat_result) -> str | None:
        try:
            data = json.loads(self._sidecar(path).read_text())
        except (OSError, ValueError):
            return None
        if (
            isinstance(data, dict)
            and data.get("size") == st.st_size
            and data.get("mtime_ns") == st.st_mtime_ns
            and isinstance(data.get("sha256"), str)
        ):
            return str(data["sha256"])
        return None

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> StoredObject:
        source = Path(path)
        existing = self.head(key)
        try:
            if existing is not None and existing.size == source.stat().st_size:
                sha, size = sha256_file(source)
                if sha == existing.sha256:
                    log.debug("object %s already stored with the same content; skipped", key)
                    return existing
            with open(source, "rb") as src:
                _, sha, size = self._write_atomic(key, lambda dst: _copy_hashing(src, dst))
        except OSError as exc:
            raise StorageError(f"cannot store {source} as {key}: {exc}") from exc
        log.info("stored %s (%d bytes)", key, size)
        return StoredObject(key=key, size=size, sha256=sha, uri=self.uri(key))

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> StoredObject:
        sha = hashlib.sha256(data).hexdigest()
        existing = self.head(key)
        if existing is not None and existing.size == len(data) and existing.sha256 == sha:
            log.debug("object %s already stored with the same content; skipped", key)
            return existing

        def writer(dst: IO[bytes]) -> tuple[str, int]:
            dst.write(data)
            return sha, len(data)

        self._write_atomic(key, writer)
        log.info("stored %s (%d bytes)", key, len(data))
        return StoredObject(key=key, size=len(data), sha256=sha, uri=self.uri(key))

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read object {key}: {exc}") from exc
        if not path.is_file():
            return None
        sha = self._read_sidecar(path, st)
        if sha is None:
            try:
                sha, _ = sha256_file(path)
                self._write_sidecar(path, sha)
            except OSError as exc:
                raise StorageError(f"cannot read object {key}: {exc}") from exc
        modified = datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC)
        return StoredObject(key=key, size=st.st_size, sha256=sha, uri=self.uri(key), modified=modified)

    def list_keys(self, prefix: str) -> Iterator[str]:
        _check_prefix(prefix)
        folder = prefix.rpartition("/")[0]
        base = self.root / folder if folder else self.root
        if not base.is_dir():
            return
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            # Dot-folders hold nothing but temporary files; they are never keys.
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        # Code-point order equals S3's UTF-8 byte order, so both backends list alike.
        yield from sorted(keys)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
            self._sidecar(path).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete object {key}: {exc}") from exc
        # Prune folders left empty so a removed submission leaves no trace on disk.
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    @contextmanager
    def open_local(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"object {key} does not exist in {self.root}")
        yield path

    def download(self, key: str, dest: Path) -> Path:
        path = self._path(key)
        obj = self.head(key)
        if obj is None:
            raise StorageError(f"object {key} does not exist in {self.root}")
        dest = Path(dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".tmp-{secrets.token_hex(8)}")
            try:
                with open(path, "rb") as src, open(tmp, "wb") as dst:
                    sha, _ = _copy_hashing(src, dst)
                if sha != obj.sha256:
                    raise StorageError(f"object {key} changed while it was copied")
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot download object {key} to {dest}: {exc}") from exc
        return dest

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def local_path(self, key: str) -> Path | None:
        """The file holding the object, or ``None`` when it is missing; for serving it, read-only."""
        path = self._path(key)
        return path if path.is_file() else None


# --------------------------------------------------------------------------------------------------
# S3


def _error_code(exc: BaseException) -> tuple[str, int]:
    """The error code and HTTP status of a botocore ``ClientError`` (``("", 0)`` for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return "", 0
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return code, int(status) if str(status).isdigit() else 0


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` comes from an S3 endpoint that is down, cut off or overloaded, so that trying again
    later may succeed: refused, reset or closed connections, timeouts, 5xx answers and throttling.

    A definite answer such as AccessDenied, NoSuchKey or NoSuchBucket (4xx) is not transient. The
    exception's causes are followed, so a :class:`StorageError` raised from a transient error is transient.
    """
    from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        err = pending.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, ClientError):
            # The endpoint answered: its answer decides.
            code, status = _error_code(err)
            return status >= 500 or status == 429 or code in _TRANSIENT_CODES
        if isinstance(
            err, HTTPClientError | BotoConnectionError | IncompleteReadError | ConnectionError | TimeoutError
        ):
            return True
        for nxt in (err.__cause__, err.__context__, getattr(err, "last_exception", None)):
            if isinstance(nxt, BaseException):
                pending.append(nxt)
    return False


class S3Store(ObjectStore):
    """Objects in an S3 bucket, optionally below a key prefix.

    Credentials come from the standard AWS environment variables or configuration files. The
    SHA-256 of every object is kept as user metadata ``sha256`` so :meth:`head` can answer a rerun
    check without reading the object.

    Every operation is retried while the endpoint is unreachable or overloaded (:func:`is_transient`),
    with waits of 1, 2, 4, 8 and then 15 s, until ``retry_window_s`` has passed since its first attempt;
    only then does it fail with a :class:`StorageError`. Operations are idempotent under a retry: an
    upload checks again whether the object is already there, and a single PUT or a multipart upload
    only becomes visible once complete, so a dropped connection never leaves a partial object.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        scratch_dir: Path | None = None,
        max_attempts: int = S3_REQUEST_ATTEMPTS,
        public_url: str | None = None,
        retry_window_s: float = S3_RETRY_WINDOW_S,
    ) -> None:
        """``max_attempts`` counts the first try too; credentials come from the environment.

        ``max_attempts`` is per request, inside botocore; ``retry_window_s`` bounds how long a whole
        operation is tried again while the endpoint is unreachable (0: no retry beyond botocore's).

        ``public_url`` is the endpoint as browsers reach it, when that differs from ``endpoint_url``
        (MinIO on a compose network): presigned URLs are signed for that host.
        """
        # boto3 takes a noticeable time to import; DAG files import kepu while being parsed.
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        if not bucket:
            raise StorageError("S3 bucket name is empty")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            _check_key(self.prefix)
        self.region = region
        self.scratch_dir = scratch_dir
        if retry_window_s < 0:
            raise StorageError(f"S3 retry window {retry_window_s} s is negative")
        self.retry_window_s = float(retry_window_s)
        self.endpoint_url = endpoint_url
        config = Config(
            region_name=region,
            # botocore's "standard" mode retries a failed request a few times with a short jittered
            # backoff (a dropped keep-alive connection, one throttled part); an outage that lasts is
            # ridden out by the deterministic window of _retry around each operation.
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=10,
            read_timeout=120,
            # MinIO and local test endpoints do not resolve bucket sub-domains.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            # Presigned URLs too are signed with SigV4 (X-Amz-Expires); botocore would use the legacy scheme.
            signature_version="s3v4",
        )
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url, config=config)
        # A SigV4 signature covers the host, so links for browsers are signed by a client of that host.
        self.signer: Any = (
            boto3.client("s3", endpoint_url=public_url, config=config)
            if public_url and public_url != endpoint_url
            else self.client
        )
        self.transfer_config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_THRESHOLD,
            max_concurrency=4,
            use_threads=True,
        )

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"

    @staticmethod
    def _errors() -> tuple[type[BaseException], ...]:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        return (BotoCoreError, ClientError, Boto3Error, OSError)

    def _full(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _retry(self, what: str, operation: Callable[[], _T]) -> _T:
        """Run ``operation``, again after 1, 2, 4, 8, 15, 15 … s while it fails with a transient error,
        until :attr:`retry_window_s` has passed since the first attempt; then raise a :class:`StorageError`.

        ``what`` names the operation in the log and in the error. Non-transient errors are raised at once.
        """
        started = time.monotonic()
        attempt = 1
        while True:
            try:
                return operation()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                elapsed = time.monotonic() - started
                remaining = self.retry_window_s - elapsed
                delay = S3_RETRY_DELAYS_S[min(attempt, len(S3_RETRY_DELAYS_S)) - 1]
                if remaining <= 0:
                    raise StorageError(
                        f"{exc if isinstance(exc, StorageError) else f'cannot {what}: {exc}'} — gave up after "
                        f"{attempt} attempt(s) in {elapsed:.0f} s: the S3 endpoint {self.endpoint_url or 'AWS'} "
                        f"stayed unreachable for the whole retry window of {self.retry_window_s:g} s "
                        f"(KEPU_S3_RETRY_WINDOW_S) · S3 存储端点在整个重试时间窗口内一直无法访问，操作失败"
                    ) from exc
                delay = min(delay, remaining)
                log.warning(
                    "S3 %s failed (attempt %d, %.0f s of the %g s retry window): %s; retrying in %g s",
                    what,
                    attempt,
                    elapsed,
                    self.retry_window_s,
                    exc,
                    delay,
                )
                time.sleep(delay)
                attempt += 1

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist yet (tests and the demo only), and make sure the
        endpoint aborts multipart uploads left incomplete for a day (see :meth:`_ensure_multipart_cleanup`)."""
        self._retry(f"create bucket {self.bucket}", self._ensure_bucket_once)
        self._retry(f"set the lifecycle of bucket {self.bucket}", self._ensure_multipart_cleanup)

    def _ensure_bucket_once(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise StorageError(f"cannot reach bucket {self.bucket}: {exc}") from exc
        except self._errors() as exc:
            raise StorageError(f"cannot reach bucket {self.bucket}: {exc}") from exc
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise StorageError(f"cannot create bucket {self.bucket}: {exc}") from exc
        except self._errors() as exc:
            raise StorageError(f"cannot create bucket {self.bucket}: {exc}") from exc
        log.info("created bucket %s", self.bucket)

    def _ensure_multipart_cleanup(self) -> None:
        """Add a lifecycle rule that aborts multipart uploads still incomplete after one day.

        An upload cut off by an outage is never visible as an object, but its parts stay stored (and
        billed) until aborted. Rules the bucket already has are kept. An endpoint without lifecycle
        support (or without the permission) gets a warning only: the store works without the rule.
        """
        from botocore.exceptions import ClientError

        rule: dict[str, Any] = {
            "ID": ABORT_MULTIPART_RULE_ID,
            "Filter": {"Prefix": f"{self.prefix}/" if self.prefix else ""},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
        try:
            try:
                rules = list(self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket).get("Rules", []))
            except ClientError as exc:
                if _error_code(exc)[0] != "NoSuchLifecycleConfiguration":
                    raise
                rules = []
            if any(r.get("ID") == ABORT_MULTIPART_RULE_ID for r in rules):
                return
            self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": [*rules, rule]}
            )
        except self._errors() as exc:
            if is_transient(exc):
                raise StorageError(f"cannot set the lifecycle of bucket {self.bucket}: {exc}") from exc
            log.warning(
                "bucket %s: incomplete multipart uploads are not aborted automatically (%s); "
                "abort them with a lifecycle rule on the endpoint",
                self.bucket,
                exc,
            )
            return
        log.info("bucket %s: multipart uploads incomplete after 1 day are aborted", self.bucket)

    def _extra_args(self, key: str, sha: str, content_type: str | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"Metadata": {"sha256": sha}}
        ctype = content_type or _guess_type(key)
        if ctype:
            extra["ContentType"] = ctype
        return extra

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> StoredObject:
        source = Path(path)
        full = self._full(key)
        try:
            before = source.stat()
            sha, size = sha256_file(source)
        except OSError as exc:
            raise StorageError(f"cannot read {source} for {key}: {exc}") from exc
        # A retry first asks again whether the object is there: an upload whose answer was lost
        # with the connection is not sent twice.
        return self._retry(
            f"upload {key}", lambda: self._put_file_once(key, full, source, before, sha, size, content_type)
        )

    def _put_file_once(
        self, key: str, full: str, source: Path, before: os.stat_result, sha: str, size: int, content_type: str | None
    ) -> StoredObject:
        existing = self._head_once(key)
        if existing is not None and existing.size == size and existing.sha256 == sha:
            log.debug("object %s already stored with the same content; skipped", key)
            return existing
        try:
            self.client.upload_file(
                str(source),
                self.bucket,
                full,
                ExtraArgs=self._extra_args(key, sha, content_type),
                Config=self.transfer_config,
            )
            after = source.stat()
        except self._errors() as exc:
            raise StorageError(f"cannot upload {source} as {key}: {exc}") from exc
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            # The recorded digest would not describe what was uploaded.
            self._delete_once(key)
            raise StorageError(f"{source} changed while it was uploaded as {key}")
        log.info("uploaded %s (%d bytes)", key, size)
        return StoredObject(key=key, size=size, sha256=sha, uri=self.uri(key))

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> StoredObject:
        full = self._full(key)
        sha = hashlib.sha256(data).hexdigest()
        return self._retry(f"upload {key}", lambda: self._put_bytes_once(key, full, data, sha, content_type))

    def _put_bytes_once(self, key: str, full: str, data: bytes, sha: str, content_type: str | None) -> StoredObject:
        existing = self._head_once(key)
        if existing is not None and existing.size == len(data) and existing.sha256 == sha:
            log.debug("object %s already stored with the same content; skipped", key)
            return existing
        try:
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data, **self._extra_args(key, sha, content_type))
        except self._errors() as exc:
            raise StorageError(f"cannot upload {key}: {exc}") from exc
        log.info("uploaded %s (%d bytes)", key, len(data))
        return StoredObject(key=key, size=len(data), sha256=sha, uri=self.uri(key))

    def head(self, key: str) -> StoredObject | None:
        self._full(key)
        return self._retry(f"read object {key}", lambda: self._head_once(key))

    def _head_once(self, key: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        full = self._full(key)
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(f"cannot read object {key}: {exc}") from exc
        except self._errors() as exc:
            raise StorageError(f"cannot read object {key}: {exc}") from exc
        sha = str(resp.get("Metadata", {}).get("sha256", ""))
        modified = resp.get("LastModified")
        return StoredObject(
            key=key,
            size=int(resp["ContentLength"]),
            sha256=sha,
            uri=self.uri(key),
            modified=modified.astimezone(UTC) if isinstance(modified, datetime) else None,
        )

    def list_keys(self, prefix: str) -> Iterator[str]:
        _check_prefix(prefix)
        # The whole listing is taken before the first key is given out, so that a retry after a
        # cut-off page starts over instead of yielding keys twice.
        yield from self._retry(f"list objects under {prefix}", lambda: self._list_once(prefix))

    def _list_once(self, prefix: str) -> list[str]:
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        cut = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                keys.extend(str(item["Key"])[cut:] for item in page.get("Contents", []))
        except self._errors() as exc:
            raise StorageError(f"cannot list objects under {prefix}: {exc}") from exc
        return keys

    def delete(self, key: str) -> None:
        self._full(key)
        self._retry(f"delete object {key}", lambda: self._delete_once(key))

    def _delete_once(self, key: str) -> None:
        full = self._full(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=full)
        except self._errors() as exc:
            raise StorageError(f"cannot delete object {key}: {exc}") from exc

    def _delete_many(self, keys: list[str]) -> None:
        # DeleteObjects takes at most 1000 keys per request.
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            self._retry(f"delete objects {batch[0]}…", functools.partial(self._delete_batch_once, batch))

    def _delete_batch_once(self, batch: list[str]) -> None:
        from botocore.exceptions import ClientError

        try:
            resp = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self._full(k)} for k in batch], "Quiet": True},
            )
        except self._errors() as exc:
            raise StorageError(f"cannot delete objects {batch[0]}…: {exc}") from exc
        errors = resp.get("Errors") or []
        if errors:
            first = errors[0]
            cause = ClientError({"Error": {"Code": str(first.get("Code", ""))}}, "DeleteObjects")
            # A key refused with SlowDown or InternalError is retried like a failed request.
            raise StorageError(
                f"cannot delete {len(errors)} object(s), e.g. {first.get('Key')}: {first.get('Message')}"
            ) from cause

    @contextmanager
    def open_local(self, key: str) -> Iterator[Path]:
        if self.scratch_dir is not None:
            self.scratch_dir.mkdir(parents=True, exist_ok=True)
        tmpdir = Path(tempfile.mkdtemp(prefix="kepu-s3-", dir=self.scratch_dir))
        try:
            # Keep the object's own name: tools such as ffprobe look at the extension.
            yield self.download(key, tmpdir / key.rpartition("/")[2])
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def download(self, key: str, dest: Path) -> Path:
        self._full(key)
        return self._retry(f"download object {key}", lambda: self._download_once(key, Path(dest)))

    def _download_once(self, key: str, dest: Path) -> Path:
        obj = self._head_once(key)
        if obj is None:
            raise StorageError(f"object {key} does not exist in bucket {self.bucket}")
        tmp = dest.with_name(f".tmp-{secrets.token_hex(8)}")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(self.bucket, self._full(key), str(tmp), Config=self.transfer_config)
            if obj.sha256:
                sha, _ = sha256_file(tmp)
                if sha != obj.sha256:
                    raise StorageError(f"object {key} does not match its recorded sha256")
            os.replace(tmp, dest)
        except self._errors() as exc:
            raise StorageError(f"cannot download object {key} to {dest}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def presigned_url(self, key: str, expires_s: int = PRESIGNED_EXPIRY_S) -> str | None:
        """A presigned GET URL for ``key``, valid ``expires_s`` seconds (signed locally, no request)."""
        full = self._full(key)
        try:
            url = self.signer.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": full}, ExpiresIn=_check_expiry(expires_s)
            )
        except self._errors() as exc:
            raise StorageError(f"cannot sign a URL for object {key}: {exc}") from exc
        return str(url)


# --------------------------------------------------------------------------------------------------


def open_store(settings: Settings) -> ObjectStore:
    """The store named by ``settings.store_url``: ``file:///folder`` or ``s3://bucket[/prefix]``."""
    url = settings.store_url
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise StorageError(f"file store URL must name a local folder, got {url!r}")
        return LocalStore(Path(url2pathname(parsed.path)))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StorageError(f"S3 store URL has no bucket: {url!r}")
        return S3Store(
            parsed.netloc,
            unquote(parsed.path),
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            scratch_dir=settings.scratch_dir,
            public_url=settings.s3_public_url,
            retry_window_s=settings.s3_retry_window_s,
        )
    raise StorageError(f"unsupported store URL {url!r}; expected file:// or s3://")
