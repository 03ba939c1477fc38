"""Loading user images: orientation, colour modes, animation, and every way a file is bad."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from lfmdesk.core._errors import ImageError
from lfmdesk.core.images import _load as _images
from lfmdesk.core.images._load import LoadedImage, load_image

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def assert_one_line_error(exc: pytest.ExceptionInfo[ImageError], name: str) -> str:
    message = str(exc.value)
    assert "\n" not in message and "\r" not in message
    assert name in message
    assert 10 < len(message) < 300
    return message


def px(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def close(pixel: tuple[int, ...], expected: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, expected, strict=True))


def encoded(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def noise(size: tuple[int, int] = (256, 256)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def png_with_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (valid CRCs, almost no data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ---- orientation and colour ------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), RED)
    image.paste(BLUE, (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = tmp_path / "phone.jpg"
    image.save(path, quality=95, exif=exif.tobytes())

    loaded = load_image(path)
    assert (loaded.width, loaded.height) == (20, 40)
    assert loaded.image.size == (20, 40) and loaded.image.mode == "RGB"
    assert close(px(loaded.image, (10, 5)), RED)  # the left edge is now on top
    assert close(px(loaded.image, (10, 35)), BLUE)
    assert loaded.source == str(path)


def test_orientation_is_applied_once_for_an_already_transposed_image(tmp_path: Path) -> None:
    from PIL import ImageOps

    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.new("RGB", (40, 20), RED).save(path, exif=exif.tobytes())
    upright = ImageOps.exif_transpose(Image.open(path))
    assert load_image(upright).image.size == (20, 40)


def test_rgba_transparency_becomes_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (3, 1))
    image.putdata([(255, 0, 0, 0), (0, 255, 0, 255), (0, 0, 0, 128)])
    path = tmp_path / "logo.png"
    image.save(path)
    loaded = load_image(path)
    assert px(loaded.image, (0, 0)) == WHITE
    assert px(loaded.image, (1, 0)) == GREEN
    assert close(px(loaded.image, (2, 0)), (127, 127, 127), tol=1)
    assert any("white" in note for note in loaded.notes)


def test_opaque_rgba_has_no_transparency_note() -> None:
    loaded = load_image(Image.new("RGBA", (4, 4), (10, 20, 30, 255)))
    assert px(loaded.image, (0, 0)) == (10, 20, 30)
    assert loaded.notes == ()


def test_16bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 32768, 65535, 257]], dtype=np.uint16)
    path = tmp_path / "scan16.png"
    Image.fromarray(values).save(path)
    loaded = load_image(path)
    grey = [px(loaded.image, (x, 0))[0] for x in range(4)]
    assert grey == [0, 128, 255, 1]
    assert any("16-bit" in note for note in loaded.notes)


def test_32bit_integer_image_is_scaled_over_its_range(tmp_path: Path) -> None:
    values = np.array([[-1000, 0, 99000]], dtype=np.int32)
    path = tmp_path / "depth.tif"
    Image.fromarray(values).save(path)
    grey = [px(load_image(path).image, (x, 0))[0] for x in range(3)]
    assert grey[0] == 0 and grey[2] == 255 and 0 < grey[1] < 10


def test_float_image_in_unit_range(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(path)
    grey = [px(load_image(path).image, (x, 0))[0] for x in range(3)]
    assert grey == [0, 128, 255]


def test_palette_image_with_and_without_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putdata([0, 1])
    plain, clear = tmp_path / "plain.png", tmp_path / "clear.gif"
    image.save(plain)
    image.save(clear, transparency=0)
    assert px(load_image(plain).image, (0, 0)) == RED
    loaded = load_image(clear)
    assert px(loaded.image, (0, 0)) == WHITE
    assert px(loaded.image, (1, 0)) == BLUE


def test_cmyk_jpeg_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    loaded = load_image(path)
    assert loaded.image.mode == "RGB"
    assert close(px(loaded.image, (8, 8)), RED, tol=20)
    assert any("CMYK" in note for note in loaded.notes)


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("1", 1, WHITE),
        ("L", 77, (77, 77, 77)),
        ("LA", (200, 0), WHITE),
        ("YCbCr", (76, 85, 255), RED),
        ("LAB", (138, 208, 195), RED),
    ],
)
def test_other_modes_become_rgb(
    mode: str, value: int | tuple[int, ...], expected: tuple[int, int, int]
) -> None:
    loaded = load_image(Image.new(mode, (2, 2), value))
    assert loaded.image.mode == "RGB"
    assert close(px(loaded.image, (0, 0)), expected)


@pytest.mark.parametrize(("fmt", "suffix"), [("GIF", "gif"), ("WEBP", "webp"), ("PNG", "png")])
def test_animated_image_uses_first_frame(tmp_path: Path, fmt: str, suffix: str) -> None:
    frames = [Image.new("RGB", (8, 8), color) for color in (RED, GREEN, BLUE)]
    path = tmp_path / f"anim.{suffix}"
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image(path)
    assert close(px(loaded.image, (4, 4)), RED, tol=30)
    assert "animated image: using frame 1 of 3" in loaded.notes


def test_multi_page_tiff_uses_first_page(tmp_path: Path) -> None:
    path = tmp_path / "scan.tif"
    pages = [Image.new("RGB", (8, 8), color) for color in (GREEN, RED)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    loaded = load_image(path)
    assert px(loaded.image, (0, 0)) == GREEN
    assert "multi-page image: using page 1 of 2" in loaded.notes


def test_phone_mpo_jpeg_gets_no_frame_note() -> None:
    """Many phone JPEGs are MPO: a main picture plus previews; no note for those."""
    extra = [Image.new("RGB", (8, 8))]
    loaded = load_image(
        encoded(Image.new("RGB", (8, 8), RED), "MPO", save_all=True, append_images=extra)
    )
    assert close(px(loaded.image, (0, 0)), RED) and loaded.notes == ()


# ---- the hash --------------------------------------------------------------------------


def test_same_pixels_same_hash_from_path_bytes_and_pil(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path / "photo.jpg"
    noise((64, 48)).save(path, exif=exif.tobytes())
    by_path = load_image(path)
    by_bytes = load_image(path.read_bytes())
    by_pil = load_image(Image.open(path))
    assert by_path.content_hash == by_bytes.content_hash == by_pil.content_hash
    assert (by_bytes.source, by_pil.source) == ("<bytes>", "<PIL image>")
    assert len(by_path.content_hash) == 64


def test_hash_follows_pixels_not_files(tmp_path: Path) -> None:
    image = noise((32, 32))
    image.save(tmp_path / "a.png")
    image.save(tmp_path / "b.bmp")
    assert (
        load_image(tmp_path / "a.png").content_hash == load_image(tmp_path / "b.bmp").content_hash
    )
    changed = image.copy()
    changed.putpixel((0, 0), (0, 0, 0) if px(image, (0, 0)) != (0, 0, 0) else WHITE)
    assert load_image(changed).content_hash != load_image(image).content_hash
    # Same bytes, different shape: the size is part of the key.
    flat = Image.frombytes("RGB", (16, 64), image.tobytes())
    assert load_image(flat).content_hash != load_image(image).content_hash


def test_result_is_independent_of_callers_image() -> None:
    source = Image.new("RGB", (4, 4), RED)
    loaded = load_image(source)
    source.putpixel((0, 0), BLUE)
    assert px(loaded.image, (0, 0)) == RED
    assert isinstance(loaded, LoadedImage)


# ---- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "keep"), [("PNG", 0.5), ("JPEG", 0.5), ("JPEG", 0.05)])
def test_truncated_files_are_refused(tmp_path: Path, fmt: str, keep: float) -> None:
    data = encoded(noise(), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert_one_line_error(exc, str(path))


def test_truncated_refused_even_if_pillow_was_told_to_allow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = encoded(noise(), "JPEG")
    with pytest.raises(ImageError) as exc:
        load_image(data[: len(data) // 2])
    assert_one_line_error(exc, "<bytes>")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is left alone


def test_truncated_lazy_pil_image_is_refused(tmp_path: Path) -> None:
    data = encoded(noise(), "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with Image.open(path) as lazy, pytest.raises(ImageError) as exc:
        load_image(lazy)
    assert_one_line_error(exc, "<PIL image>")


def test_decompression_bomb_is_refused_fast(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_header(30000, 30000))
    assert path.stat().st_size < 200
    tic = time.perf_counter()
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert time.perf_counter() - tic < 1.0
    assert "bomb" in assert_one_line_error(exc, str(path))


def test_size_is_checked_from_the_header_before_decoding(tmp_path: Path) -> None:
    # 81 MP is below Pillow's own bomb limit, so this is lfmdesk's check; the data is
    # missing, so reaching the decoder would give a truncation error instead.
    path = tmp_path / "huge.png"
    path.write_bytes(png_with_header(9000, 9000))
    with pytest.raises(ImageError) as exc:
        load_image(path)
    message = assert_one_line_error(exc, str(path))
    assert "9000×9000" in message and "64 MP" in message


def test_max_pixels_is_honoured() -> None:
    data = encoded(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageError) as exc:
        load_image(data, max_pixels=5000)
    assert_one_line_error(exc, "<bytes>")
    assert load_image(data, max_pixels=10_000).width == 100


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, not an image\n")
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert "not an image" in assert_one_line_error(exc, "notes.txt")


@pytest.mark.parametrize(
    ("make", "phrase"),
    [("missing", "no such file"), ("folder", "folder"), ("empty", "empty")],
)
def test_bad_paths(tmp_path: Path, make: str, phrase: str) -> None:
    path = tmp_path / "thing.png"
    if make == "folder":
        path.mkdir()
    elif make == "empty":
        path.write_bytes(b"")
    with pytest.raises(ImageError) as exc:
        load_image(str(path))
    assert phrase in assert_one_line_error(exc, str(path))


@pytest.mark.parametrize("data", [b"", b"GIF89a", b"\x89PNG\r\n\x1a\n", b"hello world"])
def test_bad_bytes(data: bytes) -> None:
    with pytest.raises(ImageError) as exc:
        load_image(data)
    assert_one_line_error(exc, "<bytes>")


def test_odd_path_characters_stay_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad\nname.png"
    path.write_text("x")
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert "\n" not in str(exc.value) and "name.png" in str(exc.value)


def test_unsupported_source_type() -> None:
    with pytest.raises(ImageError, match="int"):
        load_image(42)  # type: ignore[arg-type]


# ---- HEIC ------------------------------------------------------------------------------


def heic_bytes() -> bytes:
    pillow_heif = pytest.importorskip("pillow_heif")
    heif = pillow_heif.from_pillow(Image.new("RGB", (64, 48), (200, 10, 10)))
    buf = io.BytesIO()
    heif.save(buf, quality=90)
    return buf.getvalue()


def test_heic_without_pillow_heif_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "IMG_0001.HEIC"
    # A bare ISO-BMFF header is enough: the brand is what marks the file as HEIC.
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 32)
    monkeypatch.setattr(_images, "_heif_available", lambda: False)
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert "pip install pillow-heif" in assert_one_line_error(exc, "IMG_0001.HEIC")


def test_heic_with_pillow_heif_loads(tmp_path: Path) -> None:
    path = tmp_path / "IMG_0002.heic"
    path.write_bytes(heic_bytes())
    loaded = load_image(path)
    assert (loaded.width, loaded.height) == (64, 48)
    assert close(px(loaded.image, (30, 20)), (200, 10, 10), tol=20)
