"""Bulk-import archives: uploads normalised into one zip, checked before a job is queued."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from app.core.errors import ValidationFailed
from app.services.document_files import FILE_EXTENSIONS


@dataclass(frozen=True)
class ArchiveEntry:
    """One importable file inside the archive."""

    name: str
    size: int


def _importable(name: str) -> bool:
    path = PurePosixPath(name)
    if name.endswith("/") or any(p.startswith(".") or p == "__MACOSX" for p in path.parts):
        return False
    return path.suffix.lower() in FILE_EXTENSIONS


def pack_uploads(files: list[tuple[str, bytes]]) -> bytes:
    """Several uploaded files (or one zip) → one zip archive stored with the job."""
    if len(files) == 1 and files[0][0].lower().endswith(".zip"):
        return files[0][1]
    buffer = io.BytesIO()
    seen: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            base = PurePosixPath(name.replace("\\", "/")).name or "unnamed.txt"
            unique, n = base, 1
            while unique in seen:  # two uploads with one name both get imported
                n += 1
                unique = f"{PurePosixPath(base).stem} ({n}){PurePosixPath(base).suffix}"
            seen.add(unique)
            if base.lower().endswith(".zip"):
                raise ValidationFailed(
                    "Send a zip archive on its own, not together with other files",
                    code="import_mixed_zip",
                )
            archive.writestr(unique, data)
    return buffer.getvalue()


def inspect_archive(data: bytes, max_files: int, max_unpacked_bytes: int) -> list[ArchiveEntry]:
    """The importable entries, or a 422 that says what is wrong with the upload."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ValidationFailed(
            "The upload is not a readable zip archive; send document files (.md .txt .pdf .docx "
            ".hwp .hwpx) or a .zip of them",
            code="import_bad_archive",
        ) from exc
    with archive:
        entries = [
            ArchiveEntry(info.filename, info.file_size)
            for info in archive.infolist()
            if _importable(info.filename)
        ]
    if not entries:
        raise ValidationFailed(
            f"No importable files: expected {', '.join(FILE_EXTENSIONS)} files",
            code="import_no_files",
        )
    if len(entries) > max_files:
        raise ValidationFailed(
            f"{len(entries)} files in one import; the limit is {max_files} (JOB_IMPORT_MAX_FILES)",
            code="import_too_many_files",
        )
    unpacked = sum(e.size for e in entries)
    if unpacked > max_unpacked_bytes:
        raise ValidationFailed(
            f"The files unpack to {unpacked} bytes; the limit is {max_unpacked_bytes} "
            "(JOB_IMPORT_MAX_UNPACKED_BYTES); split the import",
            code="import_too_large",
        )
    return entries


def read_entry(data: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name)
