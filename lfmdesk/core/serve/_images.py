"""Image URLs in API requests: data URLs always, http(s) only when allowed, local paths never.

mlx-vlm's own server opens any path it is given as an ``image_url``; a server reachable by
other programs must not read the user's files, so a URL that is neither ``data:`` nor (when
the server was started with ``--allow-image-urls``) ``http(s):`` is refused. Every failure is
an :class:`ImageError` with one line, which the API answers as 400 ``invalid_image``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import urlsplit

from lfmdesk.core._errors import ImageError
from lfmdesk.core.images._load import LoadedImage, load_image

__all__ = ["ImagePolicy", "fetch_image_bytes", "image_from_url"]

_SHOWN = 60  # characters of a bad URL quoted in an error


@dataclass(frozen=True)
class ImagePolicy:
    """Which image URLs the server accepts.

    Attributes:
        allow_http: fetch ``http://`` and ``https://`` image URLs (off by default).
        max_bytes: the most bytes one image may have, decoded or fetched.
        timeout: seconds a fetch may take to connect and between reads.
    """

    allow_http: bool = False
    max_bytes: int = 20 << 20
    timeout: float = 10.0


def _shown(url: str) -> str:
    return url if len(url) <= _SHOWN else url[: _SHOWN - 1] + "…"


def _data_url_bytes(url: str, policy: ImagePolicy) -> bytes:
    header, comma, payload = url.partition(",")
    if not comma or not header.endswith(";base64"):
        raise ImageError("an image data URL must look like data:image/png;base64,<data>")
    mime = header[len("data:") : -len(";base64")].split(";")[0].strip().lower()
    if mime and not mime.startswith("image/"):
        raise ImageError(f"a data URL of type {mime} is not an image")
    if len(payload) * 3 // 4 > policy.max_bytes:
        raise ImageError(f"the image is larger than {policy.max_bytes >> 20} MB")
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("the image data URL is not valid base64") from None


def fetch_image_bytes(url: str, policy: ImagePolicy) -> bytes:
    """GET ``url`` with the policy's timeout, refusing bodies over ``max_bytes``.

    Raises:
        ImageError: the fetch failed, timed out, or the body is too large.
    """
    import httpx2

    chunks: list[bytes] = []
    size = 0
    try:
        with (
            httpx2.Client(timeout=policy.timeout, follow_redirects=True, max_redirects=3) as http,
            http.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise ImageError(f"fetching {_shown(url)} gave HTTP {response.status_code}")
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > policy.max_bytes:
                    raise ImageError(
                        f"{_shown(url)} is larger than {policy.max_bytes >> 20} MB; not fetched"
                    )
                chunks.append(chunk)
    except httpx2.TimeoutException:
        raise ImageError(f"fetching {_shown(url)} timed out") from None
    except httpx2.HTTPError as exc:
        raise ImageError(f"cannot fetch {_shown(url)}: {type(exc).__name__}") from None
    return b"".join(chunks)


def image_from_url(url: object, policy: ImagePolicy) -> LoadedImage:
    """Decode one ``image_url`` of a request into the picture the model sees.

    Raises:
        ImageError: not a string, a refused scheme, undecodable data, or not an image.
    """
    if not isinstance(url, str) or not url:
        raise ImageError("image_url.url must be a data URL string")
    scheme = urlsplit(url[:64]).scheme.lower()
    if scheme == "data":
        data = _data_url_bytes(url, policy)
    elif scheme in ("http", "https"):
        if not policy.allow_http:
            raise ImageError(
                "this server accepts images as data URLs only (start it with "
                "--allow-image-urls to let it fetch http(s) images)"
            )
        data = fetch_image_bytes(url, policy)
    else:
        raise ImageError(
            f"{_shown(url)} is not a data URL; this server never reads local files"
            if scheme in ("", "file")
            else f"image URLs with the {scheme}: scheme are not accepted; send a data URL"
        )
    return load_image(data)
