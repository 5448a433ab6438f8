"""Reading one image file: bounded decoding and the conversion to the model's channels.

Every image the package reads (training and validation files, ``tools/infer.py``'s inputs)
goes through :func:`read_image`: Pillow's decompression-bomb limit is a refusal (its
warning size included), a truncated or unidentifiable file is one ``UserInputError``
naming the file, and Pillow's own warnings stay inside.
"""
from __future__ import annotations

import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from rdrop_paddle.errors import UserInputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def is_image_file(name: str) -> bool:
    """Whether ``name`` has an image extension (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer grey images scaled to 8 bits (Pillow's ``convert`` clips them)."""
    array = np.asarray(image)
    top = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(np.rint(array.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8))


def _decode(path: str) -> Image.Image:
    try:
        with warnings.catch_warnings():  # Pillow's notes (corrupt EXIF & co.) are not the user's;
            warnings.simplefilter("ignore")  # a bomb past its warning size is refused
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
                    return _eight_bit(im)
                if im.mode == "F":
                    return _eight_bit(im.convert("I"))
                return im.convert("RGBA" if "A" in im.getbands() or im.mode == "P" else im.mode)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            ValueError, SyntaxError) as e:
        raise UserInputError(f"{path}: not an image this tool can read ({e})") from None


def read_image(path: str, in_chans: int) -> Image.Image:
    """The image at ``path`` as ``L`` (``in_chans`` 1) or ``RGB`` (3), for training, evaluation
    and inference alike: palette expanded, alpha dropped, 16-bit scaled to 8, grey repeated to
    RGB, colour and CMYK made grey (ITU-R 601 luma) for a 1-channel model."""
    image = _decode(path)
    if image.mode in ("RGBA", "LA", "PA"):
        image = image.convert("RGB" if in_chans == 3 else "L")
    return image.convert("L" if in_chans == 1 else "RGB")
