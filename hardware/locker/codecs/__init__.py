"""Lock-board codecs, one module per board family, chosen by name.

Adding a family is one new module exposing ``CODEC`` plus one line in ``_FAMILIES``.
"""

from __future__ import annotations

import importlib

from hardware.errors import ConfigurationError
from hardware.locker.codecs.base import Codec

_FAMILIES = {
    "cu": "hardware.locker.codecs.cu",  # Kerong KR-CU16 / CU12 style, sum checksum
    "8a": "hardware.locker.codecs.xor8a",  # generic 8A/80 boards, XOR checksum
}


def split_frames(codec: Codec, buf: bytes) -> tuple[list[bytes], bytes]:
    """Every complete frame at the start of ``buf`` and the bytes left over (garbage
    between frames dropped), by repeated ``codec.split_frame``."""
    frames: list[bytes] = []
    while True:
        frame, used = codec.split_frame(buf)
        buf = buf[used:]
        if frame is not None:
            frames.append(frame)
        elif used == 0:
            return frames, buf


def families() -> tuple[str, ...]:
    """The family names a bus may use in config."""
    return tuple(_FAMILIES)


def get_codec(name: str) -> Codec:
    """The codec of family ``name``; ConfigurationError for an unknown family."""
    try:
        module = _FAMILIES[name.lower()]
    except KeyError:
        raise ConfigurationError(
            f"unknown board family {name!r}: choose one of {', '.join(_FAMILIES)}"
        ) from None
    return importlib.import_module(module).CODEC
