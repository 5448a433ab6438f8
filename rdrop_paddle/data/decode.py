"""Reading one image file: bounded decoding and the conversion to the model's channels.

Every image the package reads (training and validation files, ``tools/infer.py``'s inputs)
goes through :func:`read_image`: only regular files are opened; the work of decoding is
bounded by the bytes the decoded image takes (:data:`MAX_DECODED_BYTES`, from the header's size
and mode, before any pixel is decoded; Pillow's decompression-bomb limit is a refusal too); any
failure of the decoder, whatever Pillow raises, is one ``UserInputError`` naming the file; a
photo's EXIF orientation is applied (as OpenCV's ``imread`` and Hugging Face ``datasets`` do);
Pillow's own warnings stay inside.  :func:`check_headers` runs the header checks on a whole
data set before a run writes anything.
"""
from __future__ import annotations

import contextlib
import warnings

import numpy as np
from PIL import Image, ImageOps

from rdrop_paddle.data.entries import check_regular
from rdrop_paddle.errors import UserInputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")
MAX_DECODED_BYTES = 256 << 20  # a 48-megapixel RGB photo is 145 MB
# bytes a pixel takes once decoded and converted here (16/32-bit and float modes go through float64)
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "La": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3,
                "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4}


def is_image_file(name: str) -> bool:
    """Whether ``name`` has an image extension (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer grey images scaled to 8 bits (Pillow's ``convert`` clips them)."""
    array = np.asarray(image)
    top = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(np.rint(array.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8))


def _opened(path: str) -> Image.Image:
    """``Image.open`` (the header only) of a regular file whose decoded size is within bounds."""
    check_regular(path)
    im = Image.open(path)
    width, height = im.size
    need = width * height * _PIXEL_BYTES.get(im.mode, 8)
    if need > MAX_DECODED_BYTES:
        im.close()
        raise ValueError(f"{width}x{height} {im.mode} pixels take {need >> 20} MiB decoded, more than "
                         f"{MAX_DECODED_BYTES >> 20} MiB")
    return im


def _oriented(im: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (unchanged if it has none, or bad EXIF)."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - damaged EXIF is no orientation, not a bad image
        return im


@contextlib.contextmanager
def _reading(path: str):
    """Pillow's warnings kept inside (a bomb past its warning size refused); whatever Pillow's
    decoders raise (``OSError``, ``NotImplementedError``, ...) one ``UserInputError`` naming ``path``."""
    try:
        with warnings.catch_warnings():  # Pillow's notes (corrupt EXIF & co.) are not the user's
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except UserInputError:
        raise
    except Exception as e:  # noqa: BLE001 - a decoder's failure of any type is a bad image
        raise UserInputError(f"{path}: not an image this tool can read ({type(e).__name__}: {str(e)[:200]})") from None


def _decode(path: str) -> Image.Image:
    with _reading(path), _opened(path) as im:
        im.load()
        im = _oriented(im)
        if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
            return _eight_bit(im)
        if im.mode == "F":
            return _eight_bit(im.convert("I"))
        return im.convert("RGBA" if "A" in im.getbands() or im.mode == "P" else im.mode)


def check_headers(paths: list[str]) -> None:
    """Every file of ``paths`` a regular file whose header Pillow reads and whose decoded size is
    within bounds (not its pixels: cheap enough for a whole data set); else one line naming the
    first bad file and how many there are."""
    bad = []
    for path in paths:
        try:
            with _reading(path):
                _opened(path).close()
        except UserInputError as e:
            bad.append(str(e))
    if bad:
        more = f" (and {len(bad) - 1} more such file(s))" if len(bad) > 1 else ""
        raise UserInputError(f"{bad[0]}{more}; remove it, or set Data.skip_bad_images: true to replace bad "
                             f"images while training")


def read_image(path: str, in_chans: int) -> Image.Image:
    """The image at ``path`` as ``L`` (``in_chans`` 1) or ``RGB`` (3), for training, evaluation
    and inference alike: palette expanded, alpha dropped, 16-bit scaled to 8, grey repeated to
    RGB, colour and CMYK made grey (ITU-R 601 luma) for a 1-channel model."""
    image = _decode(path)
    if image.mode in ("RGBA", "LA", "PA"):
        image = image.convert("RGB" if in_chans == 3 else "L")
    return image.convert("L" if in_chans == 1 else "RGB")
