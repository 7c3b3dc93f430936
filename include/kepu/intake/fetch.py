"""Downloading submitted material from a direct web link.

:func:`fetch_url` streams one URL to disk: into ``<dest>.part`` first, resumed with an HTTP Range
request after a dropped connection when the server allows it, retried with exponential backoff on
connection errors and 5xx answers, capped in size, hashed while it streams, and renamed to its
final name only when complete (and matching ``expected_sha256`` when one is given).

Only links to the public internet are followed. A link's host is resolved once and every address it
resolves to must be public: loopback, private, link-local, multicast, reserved and unspecified
addresses (IPv4-mapped IPv6 ones too) and cloud metadata endpoints are refused, whatever spelling the
link uses (``http://2130706433/``, ``http://0x7f.1/``, ``http://[::ffff:127.0.0.1]/``). The connection
then goes to the address that was checked, not to a name resolved again (no DNS rebinding), and the
same happens at every redirect. A refused link fails with its reason like any other failed download.
``KEPU_FETCH_ALLOW_HOSTS`` (comma-separated hosts, ``host:port``, or networks such as ``10.1.0.0/16``)
lets a private mirror through; it exists for tests and for an operator's own mirror only and is
empty by default. Besides the size cap, every download has a time limit (``max_seconds``), so a
server that trickles bytes forever cannot hold a worker.

Cloud-drive shares (百度网盘 and the like) need a browser and a login: they are never fetched here
but listed as :class:`kepu.intake.sources.PendingDownload` by :func:`kepu.intake.sources.plan_downloads`.
:func:`fetch_rows` fetches the direct links of a summary sheet and lists every failure the same way.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from kepu.errors import KepuError
from kepu.intake.sources import PendingDownload, SheetRow, classify_link, pending_from_row, plan_downloads
from kepu.storage import safe_filename, sha256_file

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_MAX_BACKOFF_S = 60.0
_USER_AGENT = "kepu-intake/1.0"
_MAX_REDIRECTS = 10
#: Whole-download time limit by default (a slow but honest 300 MB video gets through at ~100 kB/s).
DEFAULT_MAX_SECONDS = 3600.0
#: Hosts, host:port pairs or networks that may be fetched although not public: tests and private mirrors only.
ALLOW_HOSTS_ENV = "KEPU_FETCH_ALLOW_HOSTS"
#: Proxies from the environment would resolve the name themselves: the checked address is connected directly.
_NO_PROXY: dict[str, str | None] = {"http": None, "https": None}


class FetchError(KepuError):
    """A download failed for good; ``reason`` says why in English, ``reason_zh`` in Chinese."""

    def __init__(self, url: str, reason: str, reason_zh: str, *, status: int | None = None) -> None:
        self.url = url
        self.reason = reason
        self.reason_zh = reason_zh
        self.status = status
        super().__init__(f"{url}: {reason} / {reason_zh}")


@dataclass(frozen=True)
class FetchResult:
    url: str
    path: Path
    size: int
    sha256: str
    attempts: int
    resumed: bool
    content_type: str | None
    #: The file name the server suggested (Content-Disposition), before sanitising; None if none.
    server_filename: str | None


class _Retry(Exception):
    """An attempt failed in a way worth trying again (connection lost, 5xx)."""


# --- which addresses may be fetched ----------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata and platform endpoints, refused even where they would count as global
#: (AWS/GCP/OpenStack 169.254.169.254, AWS IPv6 fd00:ec2::254, ECS 169.254.170.2, Alibaba Cloud
#: 100.100.100.200, Azure wire server 168.63.129.16).
METADATA_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.169.254/32", "169.254.170.2/32", "fd00:ec2::254/128", "100.100.100.200/32", "168.63.129.16/32")
)

_KINDS = {
    "metadata": ("a cloud metadata endpoint", "云平台元数据地址"),
    "loopback": ("a loopback address", "本机回环地址"),
    "unspecified": ("an unspecified address", "未指定地址"),
    "link-local": ("a link-local address", "链路本地地址"),
    "multicast": ("a multicast address", "组播地址"),
    "private": ("a private network address", "内网地址"),
    "reserved": ("a reserved address", "保留地址"),
    "not-global": ("an address not on the public internet", "非公网地址"),
}


def address_kind(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be fetched (a key of the reasons), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in ipaddress.ip_network("::/96") and int(ip) > 0xFFFF:
            embedded = ipaddress.IPv4Address(int(ip))  # IPv4-compatible ::a.b.c.d
        if embedded is None and ip in ipaddress.ip_network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)  # NAT64
        if embedded is not None:
            return address_kind(embedded) or ("reserved" if ip.ipv4_mapped is None and ip.sixtofour is None else None)
    if any(ip in n for n in METADATA_NETWORKS):
        return "metadata"
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not-global", not ip.is_global),
    ):
        if flag:
            return kind
    return None


@dataclass(frozen=True)
class _Allowed:
    host: str | None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    port: int | None

    def admits(self, host: str, ip: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return ip in self.network
        return self.host == host


def parse_allow_hosts(text: str | None) -> list[_Allowed]:
    """``KEPU_FETCH_ALLOW_HOSTS``: ``127.0.0.1``, ``127.0.0.1:8080``, ``[::1]:8080``, ``10.0.0.0/8``, ``mirror.lan``."""
    out: list[_Allowed] = []
    for item in re.split(r"[\s,]+", text or ""):
        if not item:
            continue
        host, port = item, None
        m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:]+):(\d+)", item)
        if m:
            host = m.group(1) or m.group(3)
            port = int(m.group(2) or m.group(4)) if (m.group(2) or m.group(4)) else None
        try:
            out.append(_Allowed(None, ipaddress.ip_network(host, strict=False), port))
        except ValueError:
            out.append(_Allowed(host.lower().rstrip("."), None, port))
    return out


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    ip: str
    netloc: str


def _host_for_dns(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def vet_url(
    url: str,
    *,
    allow: Iterable[_Allowed] = (),
    resolve: Callable[..., Any] | None = None,
) -> _Target:
    """The address ``url`` may be fetched from, or :class:`FetchError` saying why it may not.

    Every address the host resolves to must be public (or admitted by ``allow``); the first one is
    the one connected to.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(
            url,
            f"only http(s) links are fetched, not {scheme or 'this'}",
            f"只下载 http(s) 链接，不支持 {scheme or '该'} 链接",
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise FetchError(url, "the link carries a user name or password", "链接中含有用户名或密码，不予下载")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise FetchError(url, "the link has no host", "链接中没有主机名")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise FetchError(url, "the link has an invalid port", "链接中的端口无效") from None
    dns_host = _host_for_dns(host)
    try:
        infos = (resolve or socket.getaddrinfo)(dns_host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _Retry(f"cannot resolve {host} ({exc})") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise _Retry(f"{host} resolves to no address")
    rules = list(allow)
    for ip in addresses:
        kind = address_kind(ip)
        if kind is None or any(r.admits(host.lower(), ip, port) for r in rules):
            continue
        en, zh = _KINDS[kind]
        shown = host if str(ip) == host else f"{host} = {ip}"
        raise FetchError(
            url,
            f"the link points to {shown}, {en}: only public addresses are fetched",
            f"链接指向{zh}（{shown}），只下载公网地址，未下载",
        )
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return _Target(scheme, dns_host.lower(), port, str(addresses[0]), netloc)


class _PinnedAdapter(HTTPAdapter):
    """Connects to the address :func:`vet_url` checked for a host, never to a name resolved again.

    The request keeps its URL (so TLS checks the certificate against the host name, and SNI names
    it); only the TCP connection goes to the pinned address. A host without a pin is refused.
    """

    def __init__(self) -> None:
        super().__init__(max_retries=0)
        self.pins: dict[tuple[str, int], str] = {}

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        parts = urlsplit(request.url)
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        ip = self.pins.get((host, port))
        if ip is None:
            raise requests.exceptions.InvalidURL(f"{host}:{port} was not checked before connecting")
        if host_params["scheme"] == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": host, "assert_hostname": host}
        return self.poolmanager.connection_from_host(
            **{**host_params, "host": ip, "port": port}, pool_kwargs=pool_kwargs
        )


# --- Content-Disposition ---------------------------------------------------------------------------

_FILENAME_STAR_RE = re.compile(r"filename\*\s*=\s*([A-Za-z0-9_-]*)'[^']*'([^;]+)", re.IGNORECASE)
_FILENAME_RE = re.compile(r"""(?<![*\w])filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))""", re.IGNORECASE)


def _unmangle(name: str) -> str:
    """http.client decodes header bytes as Latin-1; servers often send raw UTF-8 or GBK."""
    try:
        raw = name.encode("latin-1")
    except UnicodeEncodeError:
        return name
    for enc in ("utf-8", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return name


def content_disposition_filename(header: str | None) -> str | None:
    """The file name in a Content-Disposition header; ``filename*`` (RFC 5987) wins over ``filename``."""
    if not header:
        return None
    m = _FILENAME_STAR_RE.search(header)
    if m:
        charset = m.group(1) or "utf-8"
        try:
            return unquote(m.group(2).strip().strip('"'), encoding=charset, errors="strict")
        except (LookupError, UnicodeDecodeError):
            log.warning("ignoring undecodable filename* in Content-Disposition %r", header)
    m = _FILENAME_RE.search(header)
    if m:
        value = m.group(1) if m.group(1) is not None else m.group(2).strip()
        value = re.sub(r"\\(.)", r"\1", value)
        return _unmangle(value) or None
    return None


def _url_filename(url: str) -> str | None:
    last = unquote(urlsplit(url).path).rstrip("/").rpartition("/")[2]
    return last or None


# --- one download ----------------------------------------------------------------------------------


def _part_path(url: str, dest: Path, into_dir: bool) -> Path:
    if into_dir:
        # The final name is only known from the response; the partial file is named after the URL
        # so that a later call resumes it.
        return dest / f".fetch-{hashlib.sha256(url.encode()).hexdigest()[:16]}.part"
    return dest.with_name(dest.name + ".part")


def _hash_existing(path: Path, digest: Any) -> int:
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            size += len(block)
    return size


def _content_range(header: str | None) -> tuple[int, int | None] | None:
    """(first byte, total size or None) of ``bytes a-b/total``."""
    m = re.match(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)", header or "", re.IGNORECASE)
    if not m:
        return None
    return int(m.group(1)), (None if m.group(3) == "*" else int(m.group(3)))


def fetch_url(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    expected_sha256: str | None = None,
    retries: int = 4,
    timeout: float = 30,
    backoff_s: float = 1.0,
    session: requests.Session | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    allow_hosts: str | None = None,
) -> FetchResult:
    """Download ``url`` to ``dest`` and return what was written.

    ``dest`` is the file to write or, when it is an existing folder, the folder to write into under
    the name the server suggests (Content-Disposition, else the URL's last segment), sanitised so
    that it always stays inside that folder. ``retries`` counts the attempts after the first; an
    attempt that made progress does not use one up. Raises :class:`FetchError` for a share or
    non-web link, a link to anything but a public address (see the module's notes; ``allow_hosts``,
    default ``$KEPU_FETCH_ALLOW_HOSTS``, admits private mirrors), a 4xx answer, a file over
    ``max_bytes``, a download still running after ``max_seconds``, a checksum mismatch or when the
    retries are spent; the partial file is kept only when a later call can resume it. ``timeout`` is
    the longest wait for the server to answer or send the next bytes.
    """
    kind = classify_link(url)
    if kind == "share":
        raise FetchError(url, "cloud share needs a manual download", "需登录网盘手动下载")
    if kind == "invalid":
        raise FetchError(url, "not a web link", "不是有效的网址")
    dest = Path(dest)
    into_dir = dest.is_dir()
    if not into_dir:
        dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(url, dest, into_dir)
    expected = expected_sha256.lower() if expected_sha256 else None

    if not into_dir and expected and dest.is_file():
        sha, size = sha256_file(dest)
        if sha == expected:
            log.info("%s is already there with the expected sha256; not downloaded again", dest)
            return FetchResult(url, dest, size, sha, 0, False, None, None)

    own_session = session is None
    http = session or requests.Session()
    adapter = _PinnedAdapter()
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    allow = parse_allow_hosts(os.environ.get(ALLOW_HOSTS_ENV, "") if allow_hosts is None else allow_hosts)
    guard = _Guard(adapter, allow, time.monotonic() + max_seconds, max_seconds)
    attempts = 0
    failures = 0
    high_water = part.stat().st_size if part.exists() else 0
    resumed = False
    try:
        while True:
            attempts += 1
            offset = part.stat().st_size if part.exists() else 0
            try:
                result = _attempt(http, url, dest, part, offset, into_dir, max_bytes, expected, timeout, guard)
            except _Retry as exc:
                size_now = part.stat().st_size if part.exists() else 0
                if size_now > high_water:
                    high_water = size_now
                    failures = 0
                else:
                    failures += 1
                if failures > retries:
                    raise FetchError(
                        url,
                        f"gave up after {attempts} attempt(s): {exc}",
                        f"尝试 {attempts} 次后放弃：{exc}",
                    ) from None
                delay = min(_MAX_BACKOFF_S, backoff_s * (2 ** max(0, failures - 1)))
                if time.monotonic() + delay > guard.deadline:
                    raise _too_slow(url, max_seconds) from None
                log.warning("download of %s failed (%s); attempt %d in %.1f s", url, exc, attempts + 1, delay)
                time.sleep(delay)
                continue
            final, size, sha, ctype, server_name, was_resumed = result
            resumed = resumed or was_resumed
            log.info("downloaded %s to %s (%d bytes, %d attempt(s))", url, final, size, attempts)
            return FetchResult(url, final, size, sha, attempts, resumed, ctype, server_name)
    finally:
        if own_session:
            http.close()


def _too_slow(url: str, max_seconds: float) -> FetchError:
    return FetchError(
        url, f"the download took longer than {max_seconds:g} s; aborted", f"下载超过 {max_seconds:g} 秒仍未完成，已中止"
    )


@dataclass(frozen=True)
class _Guard:
    """What every request of one download is held to."""

    adapter: _PinnedAdapter
    allow: list[_Allowed]
    deadline: float
    max_seconds: float


def _follow(
    http: requests.Session, url: str, headers: dict[str, str], timeout: float, guard: _Guard
) -> requests.Response:
    """GET ``url``, following redirects by hand so that none leads to a cloud share, off the web or
    to an address that is not public (each hop is checked and pinned, see :func:`vet_url`)."""
    target = url
    for _ in range(_MAX_REDIRECTS + 1):
        try:
            checked = vet_url(target, allow=guard.allow)
        except FetchError as exc:
            if target == url:
                raise
            raise FetchError(
                url, f"the link redirects to {target}: {exc.reason}", f"链接跳转到 {target}：{exc.reason_zh}"
            ) from None
        guard.adapter.pins[(checked.host, checked.port)] = checked.ip
        try:
            resp = http.get(
                target,
                stream=True,
                timeout=timeout,
                headers={**headers, "Host": checked.netloc},
                allow_redirects=False,
                proxies=_NO_PROXY,  # type: ignore[arg-type]
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retry(f"connection failed ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            raise FetchError(url, f"request failed: {exc}", f"请求失败：{exc}") from exc
        if not resp.is_redirect:
            return resp
        location = urljoin(target, resp.headers.get("Location", ""))
        resp.close()
        kind = classify_link(location)
        if kind == "share":
            raise FetchError(
                url,
                f"the link redirects to a cloud share ({location})",
                f"链接跳转到网盘分享页（{location}），需手动下载",
            )
        if kind == "invalid":
            raise FetchError(url, f"the link redirects to {location!r}", f"链接跳转到无效地址 {location!r}")
        target = location
    raise FetchError(url, f"more than {_MAX_REDIRECTS} redirects", f"重定向超过 {_MAX_REDIRECTS} 次")


def _chunks(resp: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: ``read1`` returns whatever bytes came, so a server that trickles a
    byte at a time is seen (and stopped by the time limit) instead of blocking until a block fills."""
    raw = resp.raw
    while True:
        chunk = raw.read1(_CHUNK, decode_content=True)
        if not chunk:  # b"" only at the end of the body
            return
        yield chunk


def _attempt(
    http: requests.Session,
    url: str,
    dest: Path,
    part: Path,
    offset: int,
    into_dir: bool,
    max_bytes: int,
    expected: str | None,
    timeout: float,
    guard: _Guard,
) -> tuple[Path, int, str, str | None, str | None, bool]:
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    resp = _follow(http, url, headers, timeout, guard)
    with resp:
        status = resp.status_code
        if status == 416 and offset:
            # The partial file does not fit the server's copy (it changed): start again.
            part.unlink(missing_ok=True)
            raise _Retry("range not satisfiable; restarting")
        if status >= 500 or status in (408, 429):
            raise _Retry(f"HTTP {status}")
        if status >= 400:
            raise FetchError(url, f"server answered HTTP {status}", f"服务器返回 HTTP {status}", status=status)
        if status not in (200, 206):
            raise FetchError(url, f"unexpected HTTP {status}", f"意外的 HTTP 状态 {status}", status=status)

        append = False
        total: int | None = None
        length = resp.headers.get("Content-Length")
        body_len = int(length) if length and length.isdigit() else None
        if status == 206 and offset:
            cr = _content_range(resp.headers.get("Content-Range"))
            if cr is None or cr[0] != offset:
                part.unlink(missing_ok=True)
                raise _Retry("server sent a different range; restarting")
            append = True
            total = cr[1] if cr[1] is not None else (offset + body_len if body_len is not None else None)
        else:
            if offset:
                log.info("server ignored the Range request for %s; restarting from the beginning", url)
            if status == 206:
                cr = _content_range(resp.headers.get("Content-Range"))
                total = cr[1] if cr else None
            else:
                total = body_len
        if total is not None and total > max_bytes:
            part.unlink(missing_ok=True)
            raise FetchError(
                url,
                f"file is {total} bytes, over the limit of {max_bytes}",
                f"文件大小 {total} 字节，超过上限 {max_bytes} 字节",
            )

        digest = hashlib.sha256()
        written = _hash_existing(part, digest) if append else 0
        if append:
            log.info("resuming %s at byte %d", url, written)
        try:
            with open(part, "ab" if append else "wb") as out:
                for chunk in _chunks(resp):
                    if time.monotonic() > guard.deadline:
                        out.close()
                        part.unlink(missing_ok=True)
                        raise _too_slow(url, guard.max_seconds)
                    written += len(chunk)
                    if written > max_bytes:
                        out.close()
                        part.unlink(missing_ok=True)
                        raise FetchError(
                            url,
                            f"download passed the limit of {max_bytes} bytes; aborted",
                            f"下载超过上限 {max_bytes} 字节，已中止",
                        )
                    digest.update(chunk)
                    out.write(chunk)
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.HTTPError,
            OSError,
        ) as exc:
            if resp.headers.get("Accept-Ranges", "").strip().lower() == "none":
                # The server said it cannot resume: the next attempt starts from the beginning.
                part.unlink(missing_ok=True)
            raise _Retry(f"connection lost after {written} bytes ({type(exc).__name__})") from exc
        if total is not None and written != total:
            raise _Retry(f"connection lost after {written} of {total} bytes")

        sha = digest.hexdigest()
        if expected and sha != expected:
            part.unlink(missing_ok=True)
            raise FetchError(
                url,
                f"sha256 {sha} does not match the expected {expected}",
                f"SHA-256 校验值 {sha} 与预期 {expected} 不符",
            )
        server_name = content_disposition_filename(resp.headers.get("Content-Disposition"))
        if into_dir:
            name = safe_filename(server_name or _url_filename(resp.url or url) or "download")
            final = (dest / name).resolve()
            if final.parent != dest.resolve():
                part.unlink(missing_ok=True)
                raise FetchError(url, f"file name {name!r} leaves the folder", f"文件名 {name!r} 超出目标文件夹")
        else:
            final = dest
        os.replace(part, final)
        return final, written, sha, resp.headers.get("Content-Type"), server_name, append


# --- the direct links of a summary sheet -----------------------------------------------------------


@dataclass(frozen=True)
class FetchOutcome:
    fetched: list[tuple[SheetRow, FetchResult]]
    pending: list[PendingDownload]


def fetch_rows(
    rows: Iterable[SheetRow],
    dest_dir: Path,
    *,
    max_bytes: int,
    folder_name: Callable[[SheetRow], str] | None = None,
    **kwargs: Any,
) -> FetchOutcome:
    """Fetch every direct link of ``rows``, each into its own folder under ``dest_dir``.

    Shares, missing and invalid links, and downloads that failed all come back as pending entries
    with their reason, so nothing listed in the sheet is silently lost. ``folder_name`` names a
    row's folder (default: row number and title); ``kwargs`` go to :func:`fetch_url`.
    """
    plan = plan_downloads(rows)
    fetched: list[tuple[SheetRow, FetchResult]] = []
    pending = list(plan.pending)
    for row in plan.direct:
        if row.link is None:
            continue
        name = folder_name(row) if folder_name else f"{row.row_number:04d}-{row.title}"
        folder = Path(dest_dir) / safe_filename(name)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fetched.append((row, fetch_url(row.link, folder, max_bytes=max_bytes, **kwargs)))
        except FetchError as exc:
            log.warning("row %d (%s): %s", row.row_number, row.title, exc)
            pending.append(pending_from_row(row, f"下载失败：{exc.reason_zh}", f"download failed: {exc.reason}"))
    return FetchOutcome(fetched, pending)
