"""Images fitted to Bluesky's blob limit: left alone within it; over it, re-encoded as JPEG and
scaled down in proportion (never up) until it fits, with no metadata."""

from __future__ import annotations

import hashlib
import io
from uuid import uuid4

from PIL import Image

from tests.support.media import exif_of, noisy_png, photo_with_location
from workers.channels import Attachment
from workers.channels.bluesky_media import MAX_BLOB_BYTES, fitted


def item(data: bytes, mime: str = "image/png") -> Attachment:
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    return Attachment(media_id=uuid4(), kind="image", mime=mime, data=data, width=width, height=height, alt="x",
                      focus=None, sha256=hashlib.sha256(data).hexdigest())


def test_an_image_within_the_limit_is_uploaded_as_stored() -> None:
    photo = photo_with_location()
    assert fitted(item(photo, "image/jpeg")) == (photo, "image/jpeg", (64, 48))


def test_an_image_over_the_limit_is_re_encoded_and_scaled_down_in_proportion_within_it() -> None:
    # (with EXIF, GPS included: whatever the input carries, the blob carries none)
    with Image.open(io.BytesIO(noisy_png(1400, 1000, seed=3))) as noise:
        out = io.BytesIO()
        noise.save(out, "PNG", compress_level=1, exif=exif_of(photo_with_location()).tobytes())
    big = out.getvalue()
    assert len(big) > MAX_BLOB_BYTES
    assert exif_of(big)
    data, mime, (width, height) = fitted(item(big))
    assert mime == "image/jpeg"
    assert len(data) <= MAX_BLOB_BYTES
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert image.size == (width, height)
    assert width <= 1400
    assert abs(width / height - 1.4) < 0.01
    assert not exif_of(data)
