"""Real media bytes for the simulator's inbound messages, made here so nothing binary is shipped: a PNG, a PDF and
an Ogg Opus voice note (a valid first page with its OpusHead and a checksum; no audio follows)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (255, 128, 0)) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def pdf(text: str = "wa-gateway") -> bytes:
    """A one-page PDF that viewers open (objects, xref table and trailer with the right offsets)."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def ogg_voice_note() -> bytes:
    """The first page of an Ogg Opus stream (what a WhatsApp voice note is), with a correct page checksum."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, 0x02, 0, 0x5741_4757, 0, 0, 1) + bytes([len(head)])
    page = header + head
    crc = _ogg_crc(page)
    return page[:22] + struct.pack("<I", crc) + page[26:]


def mp4() -> bytes:
    """The start of an MP4 (its `ftyp` box): enough for a type check, not a playable video."""
    return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


SAMPLES: dict[str, tuple[Callable[[], bytes], str, str | None]] = {
    "image": (png, "image/png", "photo.png"),
    "sticker": (png, "image/webp", None),
    "document": (pdf, "application/pdf", "document.pdf"),
    "ptt": (ogg_voice_note, "audio/ogg; codecs=opus", None),
    "audio": (ogg_voice_note, "audio/ogg", "audio.ogg"),
    "video": (mp4, "video/mp4", "clip.mp4"),
}


def sample(kind: str) -> tuple[bytes, str, str | None]:
    """(bytes, mimetype, filename) of a sample for a media message type."""
    make, mimetype, filename = SAMPLES[kind]
    return make(), mimetype, filename
