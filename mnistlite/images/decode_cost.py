"""What decoding an upload will cost, read from its header before any pixel is decoded.

``decode.py`` asks ``check_bytes`` before Pillow parses a file (WebP, whose parser allocates its
canvases at open, and TIFF, whose directory Pillow parses entry by entry in Python), then ``check``
on the opened image. Both return why (one line) when one request would need more than the budgets:
MEMORY_BUDGET bytes held by the decoder at once, WORK_BUDGET bytes-of-pixels' worth of CPU (decoded
samples at full resolution, with slower decoders weighted up), else None. Arithmetic on header fields;
decode.py raises the ImageTooLarge.
"""
from __future__ import annotations

import struct

import numpy as np

MEMORY_BUDGET = 24 << 20   # bytes the decoder may hold for one image (Pillow's pixels, buffers)
WORK_BUDGET = 17 << 20     # decoded bytes' worth of CPU for one image (a 4000x4000 grey BMP is 16 MB)
# CPU per decoded byte, relative to libspng inflating and unfiltering a PNG (the unit above):
PILLOW_PNG = 1.75          # Pillow's PNG reader (palette, transparency, 16-bit, animation)
# Per PNG pixel (8-bit; twice for 16-bit), by colour type, the worst filter's: undoing the average and Paeth
# filters goes a byte at a time for grey and grey+alpha (several times the unfiltered rate) and the grey
# conversion follows (luma for colour, compositing for alpha). A 4096x4096 grey PNG is over the budget.
PNG_PIXEL = {0: 4.6, 2: 7.1, 3: 4.6, 4: 13.0, 6: 10.0}
INTERLACED = 1.75          # Adam7: seven passes, pixels scattered
LZW = 1.75                 # GIF
WEBP = 7                   # per canvas pixel: libwebp decodes every pixel, then Pillow copies RGBA
TIFF = 1.5                 # libtiff through Pillow
WIDE = {"F": 2.0, "I": 2.0}  # 32-bit pixels (PFM, 16-bit PNM): converted to grey in numpy, a block at a time
# CPU per input byte:
JPEG_BYTE = 2.5            # Huffman decoding, per compressed byte of a JPEG (a 12 MP photo of 6.5 MB fits)
JPEG_PIXEL = 0.1           # and per pixel at full size (the DC-only IDCT at 1/8 scale)
PLAIN_PNM_BYTE = 64        # Pillow's plain-text PNM reader is Python
RLE_BMP_BYTE = 256         # Pillow's BMP RLE reader is Python, one iteration per two bytes
PNG_CHUNKS = (1024, 4096)  # chunks allowed: 1024 plus one per 4 KB of file (encoders write 8-64 KB IDATs)
GIF_BLOCKS = 4096          # extension sub-blocks before the first image (Pillow reads each in Python)
MAX_TIFF_TAGS = 1024       # entries in a TIFF directory (real files have a few dozen)
MAX_TIFF_VALUES = 1 << 17  # numbers in a TIFF directory (strip and tile tables of a 4096x4096 image fit)
# Bytes Pillow stores per pixel for each mode (others: 4).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}


def _mb(n: float) -> str:
    return f"{n / (1 << 20):.0f} MB"


def over_budget(what: str, memory: float, work: float) -> str | None:
    """Why ``what`` is refused when ``memory`` or ``work`` is over its budget, else None."""
    if memory > MEMORY_BUDGET:
        return (f"{what} would need about {_mb(memory)} to decode; the limit is {_mb(MEMORY_BUDGET)}: "
                f"send a smaller image (fewer pixels, 8-bit grey or RGB)")
    if work > WORK_BUDGET:
        return (f"{what} would take too long to decode (about {_mb(work)} of pixels' worth of work; the "
                f"limit is {_mb(WORK_BUDGET)}): send a smaller image, or a baseline JPEG or 8-bit PNG")
    return None


# ------------------------------------------------------------------------------- before Pillow

def _webp_size(data) -> tuple[int, int] | None:
    """Canvas (width, height) from a WebP's first chunk (VP8X, VP8L or VP8), or None if unreadable."""
    kind = bytes(data[12:16])
    if kind == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        return w, int.from_bytes(data[27:30], "little") + 1
    if kind == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack_from("<HH", data, 26)
        return w & 0x3FFF, h & 0x3FFF
    return None


def _tiff_directory(data) -> str | None:
    """Why a TIFF's first directory is refused (more entries or numbers than any real scan), or None."""
    big = data[2:4] in (b"+\0", b"\0+")
    end = "<" if data[:2] == b"II" else ">"
    try:
        if big:
            (offset,) = struct.unpack_from(end + "Q", data, 8)
            (n,) = struct.unpack_from(end + "Q", data, offset)
            entry, head = 20, 8
        else:
            (offset,) = struct.unpack_from(end + "I", data, 4)
            (n,) = struct.unpack_from(end + "H", data, offset)
            entry, head = 12, 2
    except (struct.error, OverflowError):
        return None  # Pillow gives the error for a truncated header or an offset past the end
    if n > MAX_TIFF_TAGS:
        return f"TIFF directory has {n} entries; at most {MAX_TIFF_TAGS} are accepted: save it as PNG or JPEG"
    table = data[offset + head:offset + head + n * entry]
    if len(table) < n * entry:
        return None
    rows = np.frombuffer(table, np.uint8).reshape(n, entry)
    kinds = rows[:, 2:4].copy().view(end + "u2").ravel()
    counts = rows[:, 4:12 if big else 8].copy().view(end + ("u8" if big else "u4")).ravel()
    numeric = ~np.isin(kinds, (1, 2, 6, 7))        # BYTE, ASCII, SBYTE, UNDEFINED stay bytes
    values = float(counts[numeric].astype(np.float64).sum())
    if values > MAX_TIFF_VALUES:
        return (f"TIFF directory holds {values:.0f} numbers; at most {MAX_TIFF_VALUES} are accepted: "
                "save it as PNG or JPEG")
    return None


def _png_chunks(data) -> str | None:
    """Why a PNG is refused for holding too many chunks (each is a Python step in both readers), or None."""
    limit = PNG_CHUNKS[0] + len(data) // PNG_CHUNKS[1]
    pos, end, unpack = 8, len(data) - 8, struct.Struct(">I").unpack_from
    for _ in range(limit):
        if pos > end:
            return None
        pos += 12 + unpack(data, pos)[0]
    if pos > end:
        return None
    return f"PNG has more than {limit} chunks for its {len(data)} bytes: save it with fewer, larger chunks"


def _gif_extensions(data) -> str | None:
    """Why a GIF is refused for the extension blocks before its first image (comments, application
    data: Pillow reads and keeps them, 255 bytes at a time), or None."""
    if len(data) < 13:
        return None
    flags = data[10]
    pos, blocks = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0), 0
    while pos + 1 < len(data) and data[pos] == 0x21:
        pos += 2
        while pos < len(data) and data[pos]:
            blocks += 1
            if blocks > GIF_BLOCKS:
                return (f"GIF has more than {GIF_BLOCKS} blocks of extensions (comments, application data) "
                        "before its image: save it without them")
            pos += 1 + data[pos]
        pos += 1
    return None


def check_bytes(data) -> str | None:
    """Why a file is refused from its raw bytes, before Pillow's own header parse would cost (WebP,
    TIFF), or None."""
    head = bytes(data[:4])
    if head == b"RIFF" and bytes(data[8:12]) == b"WEBP":
        size = _webp_size(data)
        if size is None:
            return None   # Pillow says what is wrong
        w, h = size
        # Pillow's WebP reader keeps a copy of the file and libwebp's two canvases (4 bytes a pixel)
        # beside its own RGBA image.
        return over_budget(f"this {w}x{h} WebP", len(data) + 12 * w * h, WEBP * w * h)
    if head in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return _tiff_directory(data)
    if head == b"\x89PNG":
        return _png_chunks(data)
    if head == b"GIF8":
        return _gif_extensions(data)
    return None


# -------------------------------------------------------------------------------- after open

def _jpeg(im, data, draft) -> tuple[float, float]:
    """(memory, work) of an opened JPEG that will decode at size ``draft`` (None: full size)."""
    w, h = im.size
    dw, dh = draft or im.size
    memory = dw * dh * (4 if im.mode == "CMYK" else 1)   # RGB and YCbCr are drafted to L
    work = JPEG_BYTE * len(data) + JPEG_PIXEL * w * h
    if im.info.get("progressive"):
        # libjpeg keeps every DCT coefficient of a progressive file (2 bytes each) whatever the scale,
        # and walks them again in each scan.
        hmax = max(layer[1] for layer in im.layer)
        vmax = max(layer[2] for layer in im.layer)
        samples = sum(layer[1] * layer[2] for layer in im.layer) / (hmax * vmax)
        coefficients = 2 * samples * (-(-w // 8) * 8) * (-(-h // 8) * 8)
        memory += coefficients
        if memory <= MEMORY_BUDGET and work <= WORK_BUDGET:   # else refused anyway: no need to count
            room = int((WORK_BUDGET - work) * 4 / coefficients)   # scans that still fit the budget
            work += coefficients * _count(data, b"\xff\xda", room + 1) / 4
    return memory, work


def _count(data, marker: bytes, limit: int) -> int:
    """Occurrences of ``marker`` in ``data``, counted up to ``limit`` (a file of thousands of scans is not
    searched to its end)."""
    n = pos = 0
    while n < limit:
        pos = data.find(marker, pos) + 1
        if not pos:
            break
        n += 1
    return n


def _tiff(im) -> tuple[float, float]:
    w, h = im.size
    tags = im.tag_v2
    samples = int(tags.get(277, 1) or 1)
    bits = tags.get(258, (1,))
    bits = sum(bits) if isinstance(bits, tuple) else int(bits) * samples
    row = -(-w * bits // 8)
    if 322 in tags and 323 in tags:   # tiled: libtiff reads one tile at a time
        buffer = -(-int(tags[322]) * bits // 8) * int(tags[323])
    else:
        buffer = row * min(h, int(tags.get(278, h) or h))
    raw = row * h
    return w * h * _PIXEL_BYTES.get(im.mode, 4) + min(buffer, raw), raw * TIFF


def png_work(data, w: int, h: int) -> float:
    """CPU of a PNG for libspng and the grey conversion: its pixels at the worst filter's cost for their
    colour type (more for Adam7) plus the file's bytes (CRC, inflate)."""
    depth, colour, interlace = data[24], data[25], data[28]
    per_pixel = PNG_PIXEL.get(colour, max(PNG_PIXEL.values())) * max(depth, 8) / 8
    return w * h * per_pixel * (INTERLACED if interlace else 1) + len(data)


def check(im, data, draft=None) -> str | None:
    """Why an opened (not loaded) Pillow image is refused, when decoding it would break a budget, or
    None. ``draft``: the reduced size a JPEG will decode at."""
    w, h = im.size
    fmt = im.format
    memory = w * h * _PIXEL_BYTES.get(im.mode, 4)
    decoder = im.tile[0][0] if im.tile else ""
    if fmt in ("JPEG", "MPO"):
        memory, work = _jpeg(im, data, draft)
    elif fmt == "TIFF":
        memory, work = _tiff(im)
    elif fmt == "PNG" and len(data) > 28:
        work = png_work(data, w, h) * PILLOW_PNG
    elif fmt == "GIF":
        work = LZW * w * h
    elif decoder == "ppm_plain":
        work = PLAIN_PNM_BYTE * len(data)
    elif decoder == "bmp_rle":
        work = w * h + RLE_BMP_BYTE * len(data)
    else:   # GIF's LZW, raw BMP and PNM: about a byte of work per stored byte
        work = memory * WIDE.get(im.mode, 1)
    return over_budget(f"this {w}x{h} {fmt} ({im.mode})", memory, work)


# -------------------------------------------------------------------------------- orientation

def orientation(exif) -> int:
    """The EXIF orientation (1..8) from an EXIF blob (TIFF layout, maybe after b"Exif\\0\\0"); 1 if absent.

    Reads only the first directory's table, with numpy: Pillow's getexif parses every entry in Python.
    """
    if not exif:
        return 1
    data = bytes(exif[6:]) if bytes(exif[:6]) == b"Exif\0\0" else bytes(exif)
    end = {b"II": "<", b"MM": ">"}.get(data[:2])
    if end is None or len(data) < 8:
        return 1
    (offset,) = struct.unpack_from(end + "I", data, 4)
    if offset + 2 > len(data):
        return 1
    (n,) = struct.unpack_from(end + "H", data, offset)
    table = data[offset + 2:offset + 2 + 12 * n]
    n = len(table) // 12
    rows = np.frombuffer(table[:12 * n], np.uint8).reshape(n, 12)
    hits = np.flatnonzero(rows[:, :2].copy().view(end + "u2").ravel() == 0x0112)
    if not hits.size:
        return 1
    (value,) = struct.unpack_from(end + "H", rows[hits[0]].tobytes(), 8)
    return value if 1 <= value <= 8 else 1
