"""Zip safety for ``.keras`` files: member names and sizes checked before anything is
read (zip bombs, paths out of the archive), and the stored weights member read in place
(``ZipMemberWindow``) instead of being copied into memory."""

from __future__ import annotations

import io
import struct
import zipfile
from typing import Any

from tfjsconv.errors import ConversionError

_ZIP_MAX_MEMBER_BYTES = 4 * 1024**3
# Deflate cannot beat ~1032:1; weights (random floats) compress far less. An entry
# claiming more than this ratio over a few MB is a zip bomb, not a model.
_ZIP_MAX_RATIO = 200
_ZIP_RATIO_FLOOR_BYTES = 64 * 1024**2


# The weights member of a Keras 3 ``.keras`` zip.
KERAS3_WEIGHTS = "model.weights.h5"

_ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... name length, extra length


class ZipMemberWindow(io.RawIOBase):
    """A read-only, seekable view of a stored (uncompressed) zip member, read in place:
    h5py opens a ``.keras`` file's weights through it without a copy in memory or on
    disk (Keras stores its members uncompressed)."""

    def __init__(self, path: str, start: int, size: int):
        super().__init__()
        self.size = size
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._start, self._pos = start, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self.size - self._pos))
        if not n:
            return 0
        self._file.seek(self._start + self._pos)
        got = self._file.readinto(memoryview(buffer)[:n]) or 0
        self._pos += got
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


def stored_member(path: str, name: str) -> ZipMemberWindow | None:
    """A window onto member ``name`` of the zip ``path`` if it is stored uncompressed,
    else None.  A local header that disagrees with the central directory is an error."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(_ZIP_LOCAL_HEADER.size)
        end = f.seek(0, io.SEEK_END)
    if len(header) != _ZIP_LOCAL_HEADER.size:
        raise ConversionError(f"{path}: zip entry {name!r} has a truncated header")
    signature, name_length, extra_length = _ZIP_LOCAL_HEADER.unpack(header)
    start = info.header_offset + _ZIP_LOCAL_HEADER.size + name_length + extra_length
    if signature != b"PK\x03\x04" or start + info.file_size > end:
        raise ConversionError(f"{path}: zip entry {name!r} lies outside the file")
    return ZipMemberWindow(path, start, info.file_size)


def _safe_member(name: str, path: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
        raise ConversionError(f"{path}: refusing unsafe zip entry name {name!r}")


def _check_zip_entry(info: zipfile.ZipInfo, path: str) -> None:
    """Refuse entries whose declared size is too large or compressed like a bomb.

    ``zipfile`` never returns more than the declared size, so checking it bounds memory.
    """
    if info.file_size > _ZIP_MAX_MEMBER_BYTES:
        raise ConversionError(f"{path}: zip entry {info.filename!r} is too large ({info.file_size} bytes)")
    if info.file_size > _ZIP_RATIO_FLOOR_BYTES and info.file_size > _ZIP_MAX_RATIO * max(
        info.compress_size, 1
    ):
        raise ConversionError(
            f"{path}: zip entry {info.filename!r} expands {info.compress_size} bytes to {info.file_size} "
            "(a zip bomb?); refusing to read it"
        )


def _read_zip(path: str) -> tuple[dict[str, bytes], ZipMemberWindow | None]:
    """The members of a ``.keras`` zip read in memory (never extracted to disk), and
    the weights member as a window when it is stored uncompressed (then not read)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ConversionError(f"not a readable .keras zip file: {path} ({e})") from None
    window = None
    with zf:
        members: dict[str, bytes] = {}
        for info in zf.infolist():
            _safe_member(info.filename, path)
            if info.filename in ("config.json", "metadata.json", KERAS3_WEIGHTS):
                _check_zip_entry(info, path)
                if info.filename == KERAS3_WEIGHTS:
                    window = stored_member(path, info.filename)
                    if window is not None:
                        continue
                members[info.filename] = zf.read(info)
    if "config.json" not in members:
        raise ConversionError(f"{path}: .keras file has no 'config.json'")
    if window is None and KERAS3_WEIGHTS not in members:
        raise ConversionError(f"{path}: .keras file has no {KERAS3_WEIGHTS!r}")
    return members, window
