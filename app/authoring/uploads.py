"""Uploaded question files: one YAML file, or a zip of a bank, checked as hostile input.

An instructor uploads either one question file or a zip in the `questions/` layout (pattern
folders, the `questions/` folder itself, or the files of one pattern folder at the top level).
`read_upload` turns the bytes into `UploadedFile`s in memory, never extracting to disk, and
refuses whatever could escape the folder it will be written to (absolute paths, `..`,
symlinks), exhaust memory or disk (zip bombs, headers that lie about sizes), or is not plain
YAML text. `write_upload` then writes the files into an empty folder, where
`app.bank.files.read_bank` validates them against the question schema; this module knows the
layout but not the schema.

    UploadError     every problem found, one `name: what is wrong` line each
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.bank.files import PATTERN_FILE, QUESTION_SUFFIXES

KIB = 1024
MIB = 1024 * KIB

# The whole bank today is 37 files that zip to ~60 KiB; 2 MiB leaves room for a course of
# banks while bounding what one request holds in memory.
MAX_UPLOAD_BYTES = 2 * MIB
# Entries in a zip, folders and junk included: a bank of 500 files is several courses. Counted
# before any member is read, so a zip of a million empty entries costs nothing.
MAX_FILES = 500
# One file, unpacked: the longest question today is ~6 KiB, so 256 KiB is a generous ceiling
# that no hand-written question reaches.
MAX_FILE_BYTES = 256 * KIB
# All files of one upload, unpacked: bounds memory and the disk one upload can fill.
MAX_UNPACKED_BYTES = 8 * MIB
# YAML deflates about 3:1 (our bank: 149 KiB to 60 KiB); past 100:1 a member is a zip bomb.
MAX_RATIO = 100
# Below this size a high ratio is harmless (the size caps bound it) and can be honest: a
# question whose expected output repeats one line a thousand times deflates far past 100:1.
RATIO_FLOOR_BYTES = 64 * KIB
# How much is unpacked at a time, so a limit is noticed within one chunk of passing it.
READ_CHUNK_BYTES = 64 * KIB
# `<slug>/<file>.yaml` or `<slug>/<sub>/<file>.yaml`: what `read_bank` reads, and no deeper.
MAX_FOLDER_LEVELS = 2

ZIP_SUFFIX = ".zip"
ACCEPTED = "accepted uploads are one .yaml or .yml file, or a .zip of them"
# Left behind by file managers, never part of a bank: skipped without being read.
IGNORED_FOLDERS = frozenset({"__MACOSX"})  # macOS Archive Utility's resource forks
IGNORED_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
APPLEDOUBLE_PREFIX = "._"  # macOS resource forks stored beside the file they belong to
# `questions/schema.json` is generated from the models for editors; the server has its own.
BANK_SCHEMA_FILE = "schema.json"
# Only these methods: zipfile unpacks them in bounded steps, while its bzip2 and lzma readers
# inflate a whole packed chunk at once, however large the result.
ACCEPTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
ENCRYPTED_FLAGS = 0x1 | 0x40  # traditional and strong encryption (general purpose bits 0, 6)
PATCHED_DATA_FLAG = 0x20  # "compressed patched data", which zipfile cannot read
UTF8_NAME_FLAG = 0x800  # the member's name is UTF-8 (else CP437, or UTF-8 by custom)
_DRIVE_LETTER = re.compile(r"[A-Za-z]:")


class UploadError(Exception):
    """An upload that is refused; each error reads `name: what is wrong`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class UploadedFile:
    """One checked file of an upload: its relative path in the bank layout and its text."""

    path: PurePosixPath
    text: str


def read_upload(filename: str, data: bytes) -> list[UploadedFile]:
    """The files of an uploaded YAML file or zip, checked; raise UploadError listing problems."""
    shown = _shown(filename)
    if not data:
        raise UploadError([f"{shown}: the upload is empty"])
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError([f"{shown}: the upload is larger than {_size(MAX_UPLOAD_BYTES)}"])
    if filename.lower().endswith(ZIP_SUFFIX):
        return _read_zip(shown, data)
    return [_read_yaml(filename, data)]


def write_upload(files: Sequence[UploadedFile], dest: Path) -> Path:
    """Write an upload's files under `dest`, an existing empty folder, and return `dest`."""
    if not dest.is_dir() or any(dest.iterdir()):
        raise ValueError(f"{dest}: uploads are written into an existing, empty folder")
    root = dest.resolve()
    targets: dict[Path, UploadedFile] = {}
    errors = []
    for file in files:
        # Checked again here, not only in read_upload: these files may come from anywhere.
        target = (root / file.path).resolve()
        if root not in target.parents:
            errors.append(f"{_shown(str(file.path))}: would be written outside {dest}")
        elif target in targets:
            errors.append(f"{_shown(str(file.path))}: is in the upload twice")
        targets[target] = file
    if errors:
        raise UploadError(errors)
    for target, file in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("xb") as out:  # bytes, so line endings come back as they went in
            out.write(file.text.encode("utf-8"))
    return dest


# --- one YAML file ---------------------------------------------------------------------


def _read_yaml(filename: str, data: bytes) -> UploadedFile:
    shown = _shown(filename)
    if PurePosixPath(filename).suffix.lower() not in QUESTION_SUFFIXES:
        raise UploadError([f"{shown}: {ACCEPTED}"])
    if problem := _yaml_name_problem(filename):
        raise UploadError([f"{shown}: {problem}"])
    if "/" in filename or "\\" in filename:
        raise UploadError([f"{shown}: must be a plain file name, without folders"])
    if not filename.isprintable():
        raise UploadError([f"{shown}: the name contains control characters"])
    if len(data) > MAX_FILE_BYTES:
        raise UploadError([f"{shown}: is larger than {_size(MAX_FILE_BYTES)}"])
    try:
        return UploadedFile(PurePosixPath(filename), _decode(data))
    except _Refused as exc:
        raise UploadError([f"{shown}: {exc}"]) from None


# --- a zip of a bank -------------------------------------------------------------------


class _Refused(Exception):
    """One member (or the single file) is refused; the message says why."""


class _TotalExceeded(Exception):
    """The upload as a whole unpacks to more than MAX_UNPACKED_BYTES."""


@dataclass(frozen=True)
class _Member:
    name: str  # as the zip spells it, decoded; error lines use it so the user can find it
    path: PurePosixPath
    info: zipfile.ZipInfo


def _read_zip(upload: str, data: bytes) -> list[UploadedFile]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except UnicodeDecodeError as exc:
        raise UploadError(
            [f"{upload}: a member's name is marked as UTF-8 but is not ({exc.reason})"]
        ) from None
    except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as exc:
        raise UploadError([f"{upload}: not a zip archive, or a damaged one ({exc})"]) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_FILES:
            raise UploadError(
                [f"{upload}: holds {len(infos)} entries; at most {MAX_FILES} are accepted"]
            )
        errors: list[str] = []
        entries = _safe_entries(infos, errors)
        members = _bank_members(entries, errors)
        files = _unpack_all(archive, upload, members, errors)
    if errors:
        raise UploadError(errors)
    if not files:
        raise UploadError([f"{upload}: holds no .yaml or .yml files"])
    return sorted(files, key=lambda file: file.path)


def _safe_entries(infos: list[zipfile.ZipInfo], errors: list[str]) -> list[_Member]:
    """Entries whose names and kinds are safe, junk and folders left out."""
    entries = []
    for info in infos:
        name, problem = _member_name(info)
        problem = problem or _path_problem(name) or _kind_problem(info)
        if problem:
            errors.append(f"{_shown(name) or repr(name)}: {problem}")
            continue
        path = PurePosixPath(name)
        if info.is_dir() or _is_junk(path):
            continue
        entries.append(_Member(name, path, info))
    return entries


def _member_name(info: zipfile.ZipInfo) -> tuple[str, str | None]:
    """The member's name as text, and a problem if it is not UTF-8."""
    if info.flag_bits & UTF8_NAME_FLAG:
        return info.orig_filename, None  # zipfile has decoded it as UTF-8 already
    # Unflagged names were decoded as CP437, which maps every byte: undo that to get the bytes,
    # then take them as UTF-8, which is what most zip tools write whatever the flag says.
    raw = info.orig_filename.encode("cp437")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), "the name is not valid UTF-8"


def _path_problem(name: str) -> str | None:
    """What makes a member's name unsafe to write below a folder, if anything."""
    if not name:
        return "the name is empty"
    if not name.isprintable():
        return "the name contains control characters"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE_LETTER.match(name):
        return "starts with a drive letter"
    if "\\" in name:
        return "contains a backslash; zip paths use /"
    parts = name.removesuffix("/").split("/")
    if ".." in parts:
        return "goes up a folder (..)"
    if "" in parts or "." in parts:
        return "has an empty or '.' path component"
    return None


def _kind_problem(info: zipfile.ZipInfo) -> str | None:
    """What makes a member unsafe or unreadable as a plain file, if anything."""
    kind = stat.S_IFMT(info.external_attr >> 16)  # the Unix mode; 0 when made on Windows
    if kind == stat.S_IFLNK:
        return "is a symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is not a regular file"
    if info.flag_bits & ENCRYPTED_FLAGS:
        return "is encrypted"
    if info.is_dir():
        return None  # never read, so its method does not matter
    if info.flag_bits & PATCHED_DATA_FLAG or info.compress_type not in ACCEPTED_METHODS:
        return f"uses compression method {info.compress_type}; only store and deflate are read"
    return None


def _is_junk(path: PurePosixPath) -> bool:
    return (
        path.parts[0] in IGNORED_FOLDERS
        or path.name in IGNORED_NAMES
        or path.name.startswith(APPLEDOUBLE_PREFIX)
    )


def _bank_members(entries: list[_Member], errors: list[str]) -> list[_Member]:
    """The files to read, with paths relative to the bank's root, checked against the layout."""
    prefix = _wrapping_folder(entries)
    members = []
    claimed: dict[str, str] = {}  # case-folded path → the name that took it first
    for entry in entries:
        path = PurePosixPath(*entry.path.parts[prefix:])
        if path == PurePosixPath(BANK_SCHEMA_FILE):
            continue
        problem = _yaml_name_problem(path.name)
        if problem is None and len(path.parts) > MAX_FOLDER_LEVELS + 1:
            problem = (
                "is nested too deeply: a bank holds <pattern>/<file>.yaml, "
                "with at most one more folder between"
            )
        if problem is None and (first := claimed.get(str(path).casefold())):
            problem = f"has the same name as {_shown(first)}"
        if problem:
            errors.append(f"{_shown(entry.name)}: {problem}")
            continue
        claimed[str(path).casefold()] = entry.name
        members.append(_Member(entry.name, path, entry.info))
    folders = {str(folder).casefold() for m in members for folder in m.path.parents}
    for member in members:
        if str(member.path).casefold() in folders:
            errors.append(f"{_shown(member.name)}: is both a file and a folder")
    return members


def _wrapping_folder(entries: list[_Member]) -> int:
    """1 if every entry sits in one folder of pattern folders (`questions/`), else 0."""
    tops = {entry.path.parts[0] for entry in entries}
    if len(tops) != 1 or any(len(entry.path.parts) == 1 for entry in entries):
        return 0
    # A folder holding pattern.yaml is a pattern, whose name is its slug: kept. So is a folder
    # of loose questions, whose name is the only hint of the pattern they belong to.
    depths = {len(entry.path.parts) for entry in entries if entry.path.name == PATTERN_FILE}
    is_pattern, holds_patterns = 2 in depths, 3 in depths  # top/pattern.yaml, top/*/pattern.yaml
    return 1 if holds_patterns and not is_pattern else 0


def _unpack_all(
    archive: zipfile.ZipFile, upload: str, members: list[_Member], errors: list[str]
) -> list[UploadedFile]:
    unpacker = _Unpacker(archive)
    files = []
    for member in members:
        try:
            files.append(UploadedFile(member.path, _decode(unpacker.unpack(member.info))))
        except _Refused as exc:
            errors.append(f"{_shown(member.name)}: {exc}")
        except _TotalExceeded:
            errors.append(
                f"{upload}: unpacks to more than {_size(MAX_UNPACKED_BYTES)}; "
                "upload the bank in parts"
            )
            break
    return files


class _Unpacker:
    """Reads members a chunk at a time, stopping at the first limit passed."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        # Bytes unpacked so far, refused members included, so a hostile zip's work is bounded.
        self.unpacked = 0

    def unpack(self, info: zipfile.ZipInfo) -> bytes:
        """The member's bytes; raise _Refused or _TotalExceeded as soon as a limit is passed."""
        # Sizes come from what is read, never from the header's file_size, which can lie.
        # compress_size can be trusted as a bound: zipfile reads no more packed bytes than it.
        packed = max(info.compress_size, 1)
        chunks = []
        size = 0
        try:
            with self.archive.open(info) as member:
                while chunk := member.read(READ_CHUNK_BYTES):
                    size += len(chunk)
                    self.unpacked += len(chunk)
                    if size > MAX_FILE_BYTES:
                        raise _Refused(f"unpacks to more than {_size(MAX_FILE_BYTES)}")
                    if self.unpacked > MAX_UNPACKED_BYTES:
                        raise _TotalExceeded
                    if size > RATIO_FLOOR_BYTES and size > MAX_RATIO * packed:
                        raise _Refused(
                            f"unpacks more than {MAX_RATIO} times its packed size (a zip bomb?)"
                        )
                    chunks.append(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as exc:
            raise _Refused(f"is damaged ({str(exc) or type(exc).__name__})") from None
        if size != info.file_size:
            raise _Refused(f"is damaged (its header says {info.file_size} bytes, it holds {size})")
        return b"".join(chunks)


# --- shared ----------------------------------------------------------------------------


def _yaml_name_problem(name: str) -> str | None:
    """Why a file name is not a question file's, if it is not; the suffix rule is read_bank's."""
    suffix = PurePosixPath(name).suffix
    if suffix in QUESTION_SUFFIXES:
        return None
    if suffix.lower() in QUESTION_SUFFIXES:
        return f"rename it to end in {suffix.lower()}: the bank reads lowercase suffixes only"
    return "is not a YAML file (.yaml or .yml)"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None


def _shown(name: str) -> str:
    """A name fit for an error line: control characters escaped, so it cannot forge lines."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in name)


def _size(n: int) -> str:
    if n >= MIB:
        return f"{n / MIB:.3g} MiB"
    if n >= KIB:
        return f"{n / KIB:.3g} KiB"
    return f"{n} bytes"
