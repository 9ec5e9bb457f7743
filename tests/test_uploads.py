"""Uploaded question files: one YAML file or a zip of a bank, checked as hostile input."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from app.authoring import uploads
from app.authoring.uploads import (
    ACCEPTED,
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_UPLOAD_BYTES,
    READ_CHUNK_BYTES,
    UploadedFile,
    UploadError,
    read_upload,
    write_upload,
)
from app.bank.files import read_bank
from tests.conftest import QUESTIONS

QUESTION = "id: q1\nkind: choice\n"
PATTERN = "title: Schedulers\n"

Member = tuple[str | zipfile.ZipInfo, bytes | str]


def _zip(*members: Member, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip built in memory, members in the order given (duplicates allowed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def _errors(filename: str, data: bytes) -> list[str]:
    with pytest.raises(UploadError) as caught:
        read_upload(filename, data)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


def _paths(files: list[UploadedFile]) -> list[str]:
    return [str(file.path) for file in files]


# Offsets in the zip format (APPNOTE 4.3.7 and 4.3.12) of the fields the tests patch.
LOCAL_HEADER = (b"PK\x03\x04", 26, 30)  # signature, name-length offset, name offset
CENTRAL_HEADER = (b"PK\x01\x02", 28, 46)
FLAGS = {LOCAL_HEADER: 6, CENTRAL_HEADER: 8}
FILE_SIZE = {LOCAL_HEADER: 22, CENTRAL_HEADER: 24}


def _patch(data: bytes, name: str, *, flags: int = 0, file_size: int | None = None) -> bytes:
    """Rewrite fields of `name`'s local and central headers, as a hostile tool could."""
    patched = bytearray(data)
    for header in (LOCAL_HEADER, CENTRAL_HEADER):
        signature, length_at, name_at = header
        start = patched.find(signature)
        while start >= 0:
            (length,) = struct.unpack_from("<H", patched, start + length_at)
            if patched[start + name_at : start + name_at + length] == name.encode():
                (old_flags,) = struct.unpack_from("<H", patched, start + FLAGS[header])
                struct.pack_into("<H", patched, start + FLAGS[header], old_flags | flags)
                if file_size is not None:
                    struct.pack_into("<I", patched, start + FILE_SIZE[header], file_size)
            start = patched.find(signature, start + 1)
    return bytes(patched)


# --- one YAML file ---------------------------------------------------------------------


@pytest.mark.parametrize("filename", ["q1.yaml", "q1.yml"])
def test_a_single_yaml_file_is_one_uploaded_file(filename: str) -> None:
    files = read_upload(filename, QUESTION.encode())
    assert files == [UploadedFile(PurePosixPath(filename), QUESTION)]


@pytest.mark.parametrize(
    ("filename", "data", "error"),
    [
        ("lr/q1.yaml", b"id: q1\n", "lr/q1.yaml: must be a plain file name, without folders"),
        (
            "C:\\fakepath\\q1.yaml",
            b"id: q1\n",
            "C:\\fakepath\\q1.yaml: must be a plain file name, without folders",
        ),
        ("notes.txt", b"id: q1\n", f"notes.txt: {ACCEPTED}"),
        (
            "Q1.YAML",
            b"id: q1\n",
            "Q1.YAML: rename it to end in .yaml: the bank reads lowercase suffixes only",
        ),
        ("q1.yaml", b"", "q1.yaml: the upload is empty"),
        (
            "q1.yaml",
            b"id: caf\xe9\n",
            "q1.yaml: is not UTF-8 text (byte 0xe9 at offset 7); save it as UTF-8",
        ),
        ("q1.yaml", b"#" * (MAX_FILE_BYTES + 1), "q1.yaml: is larger than 256 KiB"),
        ("q\n1.yaml", b"id: q1\n", "q\\n1.yaml: the name contains control characters"),
    ],
)
def test_a_single_file_is_refused_naming_it(filename: str, data: bytes, error: str) -> None:
    assert _errors(filename, data) == [error]


def test_an_upload_over_the_size_limit_is_refused_before_it_is_opened() -> None:
    data = b"\0" * (MAX_UPLOAD_BYTES + 1)  # not even a zip: the size is checked first
    assert _errors("bank.zip", data) == ["bank.zip: the upload is larger than 2 MiB"]


# --- zips that are fine ----------------------------------------------------------------


def test_a_zip_of_one_pattern_folders_files_keeps_them_at_the_top() -> None:
    data = _zip(("pattern.yaml", PATTERN), ("q1.yaml", QUESTION), ("extra/q2.yml", "id: q2\n"))
    files = read_upload("bank.ZIP", data)
    assert _paths(files) == ["extra/q2.yml", "pattern.yaml", "q1.yaml"]
    assert files[2].text == QUESTION


def test_a_zip_of_one_pattern_folder_keeps_the_folder_as_the_slug() -> None:
    data = _zip(("lr/", b""), ("lr/pattern.yaml", PATTERN), ("lr/q1.yaml", QUESTION))
    assert _paths(read_upload("bank.zip", data)) == ["lr/pattern.yaml", "lr/q1.yaml"]


def test_a_zip_of_one_folder_of_loose_questions_keeps_the_folder() -> None:
    data = _zip(("lr/q1.yaml", QUESTION), ("lr/hard/q2.yaml", "id: q2\n"))
    assert _paths(read_upload("bank.zip", data)) == ["lr/hard/q2.yaml", "lr/q1.yaml"]


def test_a_zip_of_the_questions_folder_loses_that_folder_and_the_junk() -> None:
    data = _zip(
        ("questions/", b""),
        ("questions/schema.json", "{}"),
        ("questions/lr/", b""),
        ("questions/lr/pattern.yaml", PATTERN),
        ("questions/lr/q1.yaml", QUESTION),
        ("questions/lr/hard/q2.yaml", "id: q2\n"),
        ("questions/lr/.DS_Store", b"\0\0\x01Bud1"),
        ("questions/lr/._q1.yaml", b"\0\x05\x16\x07"),
        ("__MACOSX/questions/lr/._q1.yaml", b"\0\x05\x16\x07"),
        ("questions/opt/pattern.yaml", PATTERN),
    )
    assert _paths(read_upload("questions.zip", data)) == [
        "lr/hard/q2.yaml",
        "lr/pattern.yaml",
        "lr/q1.yaml",
        "opt/pattern.yaml",
    ]


def test_the_real_bank_zipped_reads_writes_and_validates_again(tmp_path: Path) -> None:
    members: list[Member] = [
        (str(path.relative_to(QUESTIONS.parent)), path.read_bytes())
        for path in sorted(QUESTIONS.rglob("*"))
        if path.is_file()
    ]
    files = read_upload("questions.zip", _zip(*members))
    assert write_upload(files, tmp_path) == tmp_path
    uploaded, original = read_bank(tmp_path), read_bank(QUESTIONS)
    assert [p.slug for p in uploaded] == [p.slug for p in original]
    assert [[s.question for s in p.questions] for p in uploaded] == [
        [s.question for s in p.questions] for p in original
    ]


def test_a_small_file_that_compresses_very_well_is_not_a_bomb() -> None:
    # A question whose expected output repeats one line: honest, and far past MAX_RATIO.
    text = "output: |\n" + "  lr 0.1\n" * 3000
    data = _zip(("q1.yaml", text))
    info = zipfile.ZipFile(io.BytesIO(data)).infolist()[0]
    assert info.file_size > uploads.MAX_RATIO * info.compress_size
    assert read_upload("bank.zip", data)[0].text == text


def test_exactly_max_files_members_are_accepted() -> None:
    data = _zip(*[(f"q{i}.yaml", f"id: q{i}\n") for i in range(MAX_FILES)])
    assert len(read_upload("bank.zip", data)) == MAX_FILES


# --- zips that are refused: names and kinds --------------------------------------------


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("../evil.yaml", "../evil.yaml: goes up a folder (..)"),
        ("lr/../../evil.yaml", "lr/../../evil.yaml: goes up a folder (..)"),
        ("/abs.yaml", "/abs.yaml: is an absolute path"),
        ("C:/evil.yaml", "C:/evil.yaml: starts with a drive letter"),
        ("a\\b.yaml", "a\\b.yaml: contains a backslash; zip paths use /"),
        ("..\\evil.yaml", "..\\evil.yaml: contains a backslash; zip paths use /"),
        ("lr/./q.yaml", "lr/./q.yaml: has an empty or '.' path component"),
        ("lr//q.yaml", "lr//q.yaml: has an empty or '.' path component"),
        ("lr/q\n.yaml", "lr/q\\n.yaml: the name contains control characters"),
        (
            "lr/a/b/q.yaml",
            "lr/a/b/q.yaml: is nested too deeply: a bank holds "
            "<pattern>/<file>.yaml, with at most one more folder between",
        ),
        ("lr/notes.txt", "lr/notes.txt: is not a YAML file (.yaml or .yml)"),
        ("lr/run.py", "lr/run.py: is not a YAML file (.yaml or .yml)"),
        ("lr/Q.YML", "lr/Q.YML: rename it to end in .yml: the bank reads lowercase suffixes only"),
    ],
)
def test_a_member_with_a_bad_name_is_refused_naming_it(name: str, error: str) -> None:
    data = _zip(("lr/pattern.yaml", PATTERN), (name, QUESTION))
    assert _errors("bank.zip", data) == [error]


def test_a_symlink_member_is_refused() -> None:
    link = zipfile.ZipInfo("lr/link.yaml")
    link.create_system = 3  # Unix, whose mode sits in the high 16 bits of external_attr
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = _zip(("lr/pattern.yaml", PATTERN), (link, "/etc/passwd"))
    assert _errors("bank.zip", data) == ["lr/link.yaml: is a symbolic link"]


def test_a_device_member_is_refused() -> None:
    fifo = zipfile.ZipInfo("lr/pipe.yaml")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    data = _zip(("lr/pattern.yaml", PATTERN), (fifo, ""))
    assert _errors("bank.zip", data) == ["lr/pipe.yaml: is not a regular file"]


def test_an_encrypted_member_is_refused() -> None:
    data = _patch(_zip(("lr/secret.yaml", QUESTION)), "lr/secret.yaml", flags=0x1)
    assert _errors("bank.zip", data) == ["lr/secret.yaml: is encrypted"]


def test_a_bzip2_member_is_refused_unread() -> None:
    data = _zip(("lr/q1.yaml", QUESTION), method=zipfile.ZIP_BZIP2)
    assert _errors("bank.zip", data) == [
        "lr/q1.yaml: uses compression method 12; only store and deflate are read"
    ]


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")  # zipfile warns; we want it
@pytest.mark.parametrize("second", ["lr/q1.yaml", "lr/Q1.yaml"])
def test_a_duplicate_name_is_refused(second: str) -> None:
    data = _zip(("lr/q1.yaml", QUESTION), (second, "id: q2\n"))
    assert _errors("bank.zip", data) == [f"{second}: has the same name as lr/q1.yaml"]


def test_a_name_that_is_both_a_file_and_a_folder_is_refused() -> None:
    data = _zip(("lr/q.yaml", QUESTION), ("lr/q.yaml/q2.yaml", "id: q2\n"))
    assert _errors("bank.zip", data) == ["lr/q.yaml: is both a file and a folder"]


def test_a_name_that_is_not_utf8_is_refused() -> None:
    # zipfile writes only ASCII or flagged UTF-8 names, so write a placeholder and swap in
    # Latin-1 bytes, unflagged, as an old Windows tool would.
    data = _zip(("lr/cafXX.yaml", QUESTION)).replace(b"cafXX", b"caf\xe9\xe9")
    assert _errors("bank.zip", data) == ["lr/caf\\xe9\\xe9.yaml: the name is not valid UTF-8"]


def test_a_name_flagged_utf8_that_is_not_is_refused() -> None:
    data = _zip(("lr/café.yaml", QUESTION)).replace("café".encode(), b"caf\xe9\xe9")
    assert _errors("bank.zip", data) == [
        "bank.zip: a member's name is marked as UTF-8 but is not (invalid continuation byte)"
    ]


def test_a_name_that_is_utf8_without_the_flag_is_read_as_utf8() -> None:
    data = _zip(("lr/cafXX.yaml", QUESTION)).replace(b"cafXX", "café".encode())
    assert _paths(read_upload("bank.zip", data)) == ["lr/café.yaml"]


def test_every_bad_member_is_reported_at_once() -> None:
    data = _zip(
        ("../evil.yaml", QUESTION),
        ("lr/ok.yaml", QUESTION),
        ("lr/notes.txt", "notes"),
        ("lr/latin.yaml", b"id: caf\xe9\n"),
    )
    assert _errors("bank.zip", data) == [
        "../evil.yaml: goes up a folder (..)",
        "lr/notes.txt: is not a YAML file (.yaml or .yml)",
        "lr/latin.yaml: is not UTF-8 text (byte 0xe9 at offset 7); save it as UTF-8",
    ]


# --- zips that are refused: sizes and damage -------------------------------------------


def test_too_many_members_are_refused_before_any_is_read() -> None:
    data = _zip(*[(f"q{i}.yaml", "") for i in range(MAX_FILES + 1)])
    assert _errors("bank.zip", data) == [
        f"bank.zip: holds {MAX_FILES + 1} entries; at most {MAX_FILES} are accepted"
    ]


def test_a_zip_bomb_is_refused_after_reading_little_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _zip(("lr/bomb.yaml", b"\0" * (20 * 1024 * 1024)))
    assert len(data) < 50 * 1024  # 20 MiB of zeros packs to about 20 KiB
    unpacked = 0
    real_read = zipfile.ZipExtFile.read

    def counting_read(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        nonlocal unpacked
        chunk = real_read(self, n)
        unpacked += len(chunk)
        return chunk

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    assert _errors("bank.zip", data) == ["lr/bomb.yaml: unpacks to more than 256 KiB"]
    assert unpacked <= MAX_FILE_BYTES + READ_CHUNK_BYTES


def test_a_small_member_packed_past_max_ratio_is_a_bomb() -> None:
    data = _zip(("lr/bomb.yaml", b"\0" * (200 * 1024)))  # under MAX_FILE_BYTES, ~1000:1
    assert _errors("bank.zip", data) == [
        "lr/bomb.yaml: unpacks more than 100 times its packed size (a zip bomb?)"
    ]


def test_members_unpacking_past_the_total_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "MAX_UNPACKED_BYTES", 100 * 1024)
    text = "".join(f"- line {i}\n" for i in range(6000))  # ~60 KiB, packs ~4:1
    data = _zip(("lr/a.yaml", text), ("lr/b.yaml", text), ("lr/c.yaml", text))
    assert _errors("bank.zip", data) == [
        "bank.zip: unpacks to more than 100 KiB; upload the bank in parts"
    ]


def test_a_header_that_understates_the_size_is_refused_as_damaged() -> None:
    # CPython's reader stops at the declared size, so the lie cannot make it read more; the
    # CRC of the truncated data then fails.
    big = "".join(f"- line {i}\n" for i in range(30000))  # ~300 KiB, over MAX_FILE_BYTES
    data = _patch(_zip(("lr/liar.yaml", big)), "lr/liar.yaml", file_size=100)
    assert _errors("bank.zip", data) == [
        "lr/liar.yaml: is damaged (Bad CRC-32 for file 'lr/liar.yaml')"
    ]


def test_a_header_that_overstates_the_size_is_refused_as_damaged() -> None:
    data = _patch(_zip(("lr/liar.yaml", QUESTION)), "lr/liar.yaml", file_size=1000)
    assert _errors("bank.zip", data) == [
        f"lr/liar.yaml: is damaged (its header says 1000 bytes, it holds {len(QUESTION)})"
    ]


def test_damaged_deflate_data_is_refused_naming_the_member() -> None:
    text = "".join(f"- line {i}\n" for i in range(500))
    data = bytearray(_zip(("lr/q1.yaml", text)))
    start = data.find(b"PK\x03\x04") + 30 + len("lr/q1.yaml")
    data[start : start + 40] = b"\xff" * 40
    (error,) = _errors("bank.zip", bytes(data))
    assert error.startswith("lr/q1.yaml: is damaged (")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"id: q1\n", "bank.zip: not a zip archive, or a damaged one (File is not a zip file)"),
        (_zip(), "bank.zip: holds no .yaml or .yml files"),
        (
            _zip(("__MACOSX/._q.yaml", b"\0"), (".DS_Store", b"\0"), ("lr/", b"")),
            "bank.zip: holds no .yaml or .yml files",
        ),
    ],
)
def test_a_zip_with_nothing_to_read_is_refused(data: bytes, error: str) -> None:
    assert _errors("bank.zip", data) == [error]


# --- writing ---------------------------------------------------------------------------


def test_write_upload_writes_the_files_byte_for_byte(tmp_path: Path) -> None:
    files = [
        UploadedFile(PurePosixPath("lr/pattern.yaml"), PATTERN),
        UploadedFile(PurePosixPath("lr/hard/q1.yaml"), "id: q1\r\nkind: choice\r\n"),
    ]
    assert write_upload(files, tmp_path) == tmp_path
    assert (tmp_path / "lr/pattern.yaml").read_bytes() == PATTERN.encode()
    assert (tmp_path / "lr/hard/q1.yaml").read_bytes() == b"id: q1\r\nkind: choice\r\n"


@pytest.mark.parametrize("path", ["../evil.yaml", "/tmp/evil.yaml", "lr/../../evil.yaml", "."])
def test_write_upload_refuses_a_path_outside_dest_writing_nothing(
    tmp_path: Path, path: str
) -> None:
    dest = tmp_path / "upload"
    dest.mkdir()
    files = [
        UploadedFile(PurePosixPath("lr/ok.yaml"), QUESTION),
        UploadedFile(PurePosixPath(path), QUESTION),
    ]
    with pytest.raises(UploadError) as caught:
        write_upload(files, dest)
    assert caught.value.errors == [f"{PurePosixPath(path)}: would be written outside {dest}"]
    assert list(tmp_path.rglob("*")) == [dest]


def test_write_upload_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text(QUESTION)
    with pytest.raises(ValueError, match="empty folder"):
        write_upload([UploadedFile(PurePosixPath("q1.yaml"), QUESTION)], tmp_path)


def test_write_upload_refuses_a_path_given_twice_writing_nothing(tmp_path: Path) -> None:
    files = [
        UploadedFile(PurePosixPath("lr/q1.yaml"), QUESTION),
        UploadedFile(PurePosixPath("lr/hard/../q1.yaml"), "id: q2\n"),
    ]
    with pytest.raises(UploadError) as caught:
        write_upload(files, tmp_path)
    assert caught.value.errors == ["lr/hard/../q1.yaml: is in the upload twice"]
    assert list(tmp_path.iterdir()) == []
