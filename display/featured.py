"""Featured-product images from the hub's web app: downloaded once over HTTP, kept by hash.

The hub publishes the admin's featured products as `FeaturedState` (captions, an image URL and
its SHA-256); images never travel over MQTT. A background thread fetches each image a screen
needs (only from the inventory's hub address: `hub.media_url`, else `site.public_url`; within a
time and size limit; no redirects, no proxies), checks its hash and keeps it on disk under that
hash, so restarts and reconnects download nothing again. Until an image is here (or when it
cannot be fetched) the slide shows its caption on a plain panel; failures are retried.

    images = FeaturedImages(cache / "featured", site.media_url(), on_ready=lambda sha: ...)
    images.start()
    images.want(state.slides)        # fetches what is missing, in the background
    images.path(slide.image_sha256)  # the file on disk, or None (show the caption)
    images.close()
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

from display.errors import ImageRefused
from protocol import messages as m

log = logging.getLogger("mpp.display")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SHA256_RE = re.compile(r"[0-9a-f]{64}")
CHUNK = 64 * 1024


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead anywhere: refuse it (urllib then raises HTTPError)."""

    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    # The hub is on the site's LAN: straight there, whatever proxy the environment names.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


class FeaturedImages:
    """The images of the featured products this screen shows, on disk by SHA-256."""

    def __init__(
        self,
        folder: Path,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        max_bytes: int = 16 * 1024 * 1024,
        retry_s: float = 30.0,
        keep: int = 32,
        on_ready: Callable[[str], None] | None = None,
        device: str = "",
    ) -> None:
        self.folder = Path(folder)
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.retry_s = retry_s
        self.keep = keep
        self.on_ready = on_ready
        self.failures: dict[str, str] = {}  # sha256 -> why its last download failed
        self.downloads = 0  # images fetched over HTTP (not found on disk)
        self._extra = {"device": device}
        self._opener = _opener()
        self._wanted: dict[str, str] = {}  # sha256 -> url, of the slides shown now
        self._ready: set[str] = set()
        self._retry_at: dict[str, float] = {}
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FeaturedImages:
        """Look at what is on disk already; start the download thread."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            on_disk = {p.stem for p in self.folder.glob("*.png") if SHA256_RE.fullmatch(p.stem)}
        except OSError as exc:
            log.error(
                "featured image cache unusable; slides show captions only",
                extra={**self._extra, "folder": str(self.folder), "error": str(exc)},
            )
            on_disk = set()
        with self._lock:
            self._ready |= on_disk
        self._thread = threading.Thread(target=self._run, name="featured-images", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 2.0) -> None:
        """Stop the download thread (a download under way ends within its time limit)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- what the screen asks ----------------------------------------------------------------
    def want(self, slides: Iterable[m.FeaturedSlide]) -> None:
        """These slides are shown now: fetch the images not on disk yet (in the background)."""
        with self._lock:
            self._wanted = {s.image_sha256: s.image_url for s in slides}
            for sha in self._wanted:
                self._retry_at.pop(sha, None)  # a new message: try a failed image again now
            self._lock.notify_all()

    def path(self, sha256: str) -> Path | None:
        """The image with this hash on disk, or None (not fetched yet, or it failed)."""
        with self._lock:
            ready = sha256 in self._ready
        return self.folder / f"{sha256}.png" if ready else None

    # -- downloading -----------------------------------------------------------------------
    def fetch(self, url: str, sha256: str) -> Path:
        """Download one image, check it and store it; raises ImageRefused saying why not."""
        if not SHA256_RE.fullmatch(sha256):
            raise ImageRefused(f"{sha256!r} is not a SHA-256 hex digest")
        if not url.startswith(self.base_url):
            raise ImageRefused(
                f"{url} is not on the hub's address {self.base_url}; images are fetched only from "
                "there (set hub.media_url in the inventory if the displays reach the hub elsewhere)"
            )
        data = self._download(url)
        if not data.startswith(PNG_SIGNATURE):
            raise ImageRefused(f"{url} did not send a PNG image")
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise ImageRefused(f"{url} sent an image with SHA-256 {got[:12]}…, not {sha256[:12]}…")
        target = self.folder / f"{sha256}.png"
        part = target.with_suffix(".part")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            part.write_bytes(data)
            os.replace(part, target)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise ImageRefused(f"cannot store the image in {self.folder}: {exc}") from None
        return target

    def _download(self, url: str) -> bytes:
        deadline = time.monotonic() + self.timeout_s
        try:
            with self._opener.open(url, timeout=self.timeout_s) as response:
                length = response.headers.get("Content-Length")
                if length is not None and length.isdigit() and int(length) > self.max_bytes:
                    raise ImageRefused(
                        f"{url} is {int(length)} bytes; the limit is {self.max_bytes}"
                    )
                chunks: list[bytes] = []
                size = 0
                while chunk := response.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ImageRefused(f"{url} is over {self.max_bytes} bytes; not taken")
                    if time.monotonic() > deadline:
                        raise ImageRefused(
                            f"{url} took longer than {self.timeout_s:g} s; not taken"
                        )
                    chunks.append(chunk)
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the connection
            raise ImageRefused(f"{url}: the hub answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if isinstance(exc, ImageRefused):
                raise
            reason = getattr(exc, "reason", exc)
            raise ImageRefused(f"{url}: cannot reach the hub's web app ({reason})") from None
        return b"".join(chunks)

    def _next(self) -> tuple[str, str] | None:
        """The next image to fetch, waiting until one is due; None once closed."""
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                due = [
                    (sha, url)
                    for sha, url in self._wanted.items()
                    if sha not in self._ready and self._retry_at.get(sha, 0.0) <= now
                ]
                if due:
                    return due[0]
                later = [
                    self._retry_at[sha]
                    for sha in self._wanted
                    if sha not in self._ready and sha in self._retry_at
                ]
                self._lock.wait(min(later) - now if later else None)
        return None

    def _run(self) -> None:
        while (job := self._next()) is not None:
            sha, url = job
            try:
                self.fetch(url, sha)
            except ImageRefused as exc:
                with self._lock:
                    first = sha not in self.failures
                    self.failures[sha] = str(exc)
                    self._retry_at[sha] = time.monotonic() + self.retry_s
                (log.warning if first else log.debug)(
                    "featured image not downloaded; its slide shows the caption",
                    extra={**self._extra, "image": sha[:12], "error": str(exc)},
                )
                continue
            with self._lock:
                self._ready.add(sha)
                self.failures.pop(sha, None)
                self.downloads += 1
                wanted = set(self._wanted)
            log.info("featured image downloaded", extra={**self._extra, "image": sha[:12]})
            self._prune(wanted)
            if self.on_ready is not None:
                self.on_ready(sha)

    def _prune(self, wanted: set[str]) -> None:
        """Keep the images shown now and the `keep` most recent others; drop the rest."""
        try:
            others = sorted(
                (p for p in self.folder.glob("*.png") if p.stem not in wanted),
                key=lambda p: p.stat().st_mtime,
                reverse=True,
            )
            for old in others[self.keep :]:
                old.unlink(missing_ok=True)
                with self._lock:
                    self._ready.discard(old.stem)
        except OSError as exc:
            log.warning("featured image cache not pruned", extra={**self._extra, "error": str(exc)})
