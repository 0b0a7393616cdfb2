"""Inspect a FlashVSR v1.1 weight folder: which files are present, complete and genuine, per variant.

`report(model_dir)` reads only file sizes and the files' own indexes (the safetensors header, the zip
directory of torch checkpoints), so it is cheap enough for a status page. `report(model_dir, verify=True)`
also hashes release files against the published sha256 and loads reduced test files with torch.

Two layouts are recognised. A "release" file carries the tensor payload of the published file (within 1%).
A "test" file is complete by its own index but has a different payload: the reduced random-weight models
that the tests and the conformance cases use. A folder that mixes both cannot load and is not ready.
torch is imported only by `verify=True` on test files, so the web process can call `report`.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

DIT_FILE = "diffusion_pytorch_model_streaming_dmd.safetensors"
LQ_PROJ_FILE = "LQ_proj_in.ckpt"
TC_DECODER_FILE = "TCDecoder.ckpt"
VAE_FILE = "Wan2.1_VAE.pth"
PROMPT_FILE = "posi_prompt.pth"

ALL_FILES = (DIT_FILE, LQ_PROJ_FILE, TC_DECODER_FILE, VAE_FILE, PROMPT_FILE)
VARIANT_FILES = {
    "tiny_long": (DIT_FILE, LQ_PROJ_FILE, TC_DECODER_FILE, PROMPT_FILE),
    "tiny": (DIT_FILE, LQ_PROJ_FILE, TC_DECODER_FILE, PROMPT_FILE),
    "full": (DIT_FILE, LQ_PROJ_FILE, VAE_FILE, PROMPT_FILE),
}

# Tensor bytes of each release file: parameter count x bytes per element of the release dtype. Counts: DiT
# 1,418,996,800 fp32; LQ projector 287,845,888 bf16; TCDecoder 45,338,371 fp32; Wan VAE (encoder and
# decoder) 126,892,531 fp32; prompt [1, 512, 4096] bf16. The files add a header or zip directory on top.
RELEASE_PAYLOAD_BYTES = {
    DIT_FILE: 1_418_996_800 * 4,
    LQ_PROJ_FILE: 287_845_888 * 2,
    TC_DECODER_FILE: 45_338_371 * 4,
    VAE_FILE: 126_892_531 * 4,
    PROMPT_FILE: 512 * 4096 * 2,
}
RELEASE_PAYLOAD_TOLERANCE = 0.01

# sha256 of the release files: the HF repository JunhaoZhuang/FlashVSR-v1.1 for the first three, and
# posi_prompt.pth from examples/WanVSR/prompt_tensor/ of the GitHub repository OpenImagingLab/FlashVSR.
# These are the values a third-party installer records; no hash of Wan2.1_VAE.pth is known.
RELEASE_SHA256 = {
    DIT_FILE: "bd28180edcf3446c028e32fc6b731a80bf7e4da2ab4caac3186b9499964d37be",
    LQ_PROJ_FILE: "d6d011cdaaba6a52645086caa08fa04124e746f6ca568140a24007591142bfd2",
    TC_DECODER_FILE: "e224bdcf2f52745cbf4d393ff5374c2ba09e90285d5d19062d2bf63b915b6161",
    PROMPT_FILE: "4601107a11e4e11a936a6b79df579e54dbc99872132bf542151f0ffd65b4b1ef",
}

OK = "ok"
MISSING = "missing"
WRONG_SIZE = "wrong size"
CORRUPT = "corrupt"
WRONG_SHA256 = "wrong sha256"

RELEASE = "release"
TEST = "test"


@dataclass(frozen=True)
class FileReport:
    """The state of one weight file; `message` describes what is wrong and is empty when the file is fine."""

    name: str
    status: str
    size: int | None = None
    layout: str | None = None
    message: str = ""
    verified: bool = False

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True)
class VariantReport:
    """Whether one variant can load, and a one-line summary for people."""

    variant: str
    ready: bool
    summary: str
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AssetReport:
    """Every file and every variant of one weight folder."""

    model_dir: str
    layout: str
    files: dict[str, FileReport]
    variants: dict[str, VariantReport]
    verified: bool

    def ready(self, variant: str) -> bool:
        entry = self.variants.get(variant)
        return entry is not None and entry.ready

    def to_dict(self) -> dict:
        return {
            "model_dir": self.model_dir,
            "layout": self.layout,
            "verified": self.verified,
            "files": {name: asdict(entry) for name, entry in self.files.items()},
            "variants": {name: asdict(entry) for name, entry in self.variants.items()},
        }


def report(model_dir: str | Path, verify: bool = False) -> AssetReport:
    """Inspect `model_dir`; with `verify`, hash release files and test-load reduced files (slow)."""
    folder = Path(model_dir)
    files = {name: inspect_file(folder / name, verify=verify) for name in ALL_FILES}
    layout = _folder_layout(files.values())
    variants = {variant: _variant_report(variant, files) for variant in VARIANT_FILES}
    return AssetReport(str(folder), layout, files, variants, verify)


def inspect_file(path: Path, verify: bool = False) -> FileReport:
    """Check one file's presence, completeness and layout; with `verify`, its hash or that it loads."""
    name = path.name
    if not path.is_file():
        return FileReport(name, MISSING, message=f"{name} is missing")
    size = path.stat().st_size
    try:
        payload = _payload_bytes(path)
    except TruncatedFileError as error:
        return FileReport(name, WRONG_SIZE, size, message=f"{name}: {error}")
    except ValueError as error:
        return FileReport(name, CORRUPT, size, message=f"{name}: {error}")
    layout = _file_layout(name, payload)
    entry = FileReport(name, OK, size, layout)
    if verify:
        entry = _verify(path, entry)
    return entry


class TruncatedFileError(ValueError):
    """The file is shorter than its own index declares, as an interrupted download or copy leaves it."""


def _payload_bytes(path: Path) -> int:
    """Return the tensor bytes the file's own index declares; ValueError when the file is cut short."""
    if path.suffix == ".safetensors":
        return _safetensors_payload(path)
    return _torch_zip_payload(path)


def _safetensors_payload(path: Path) -> int:
    size = path.stat().st_size
    with path.open("rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise TruncatedFileError(
                f"{size} bytes, too short for a safetensors header; the file is truncated"
            )
        (header_length,) = struct.unpack("<Q", prefix)
        if header_length > size - 8:
            raise TruncatedFileError(f"{size} bytes, shorter than its own header; the file is truncated")
        try:
            header = json.loads(stream.read(header_length))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"unreadable safetensors header ({error})") from error
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    payload = max(ends, default=0)
    needed = 8 + header_length + payload
    if size < needed:
        raise TruncatedFileError(f"{size} bytes, but its header needs {needed}; the file is truncated")
    return payload


def _torch_zip_payload(path: Path) -> int:
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile as error:
        raise TruncatedFileError(
            f"{size} bytes, not a complete torch checkpoint ({error}); "
            "the download was cut short or the file is not a checkpoint"
        ) from error
    for entry in entries:
        if entry.header_offset + entry.compress_size > size:
            raise TruncatedFileError(
                f"{size} bytes, but entry {entry.filename} ends past the end; the file is truncated"
            )
    return sum(entry.file_size for entry in entries if "/data/" in entry.filename)


def _file_layout(name: str, payload: int) -> str:
    expected = RELEASE_PAYLOAD_BYTES[name]
    if abs(payload - expected) <= expected * RELEASE_PAYLOAD_TOLERANCE:
        return RELEASE
    return TEST


def _verify(path: Path, entry: FileReport) -> FileReport:
    damaged = _zip_crc_error(path)
    if damaged:
        return FileReport(
            entry.name, CORRUPT, entry.size, entry.layout, f"{entry.name}: {damaged}; download it again"
        )
    if entry.layout == RELEASE:
        expected = RELEASE_SHA256.get(entry.name)
        if expected is None:
            return entry
        actual = sha256_of(path)
        if actual != expected:
            message = (
                f"{entry.name}: sha256 {actual} differs from the release's {expected}; download it again"
            )
            return FileReport(entry.name, WRONG_SHA256, entry.size, entry.layout, message)
        return FileReport(entry.name, OK, entry.size, entry.layout, verified=True)
    error = _load_error(path)
    if error:
        return FileReport(entry.name, CORRUPT, entry.size, entry.layout, f"{entry.name}: {error}")
    return FileReport(entry.name, OK, entry.size, entry.layout, verified=True)


def _zip_crc_error(path: Path) -> str:
    """Check the CRC-32 of every entry of a torch checkpoint, the only checksum a file carries itself."""
    if path.suffix == ".safetensors":
        return ""
    try:
        with zipfile.ZipFile(path) as archive:
            bad_entry = archive.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        return f"unreadable torch checkpoint ({error})"
    return f"entry {bad_entry} fails its CRC-32 check" if bad_entry else ""


def _load_error(path: Path) -> str:
    import safetensors.torch
    import torch

    try:
        if path.suffix == ".safetensors":
            safetensors.torch.load_file(str(path))
        else:
            torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the loaders raise many types for damaged files
        return f"does not load ({type(error).__name__}: {error})"
    return ""


def sha256_of(path: Path, chunk_bytes: int = 8 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _folder_layout(files) -> str:
    layouts = {entry.layout for entry in files if entry.layout is not None}
    if not layouts:
        return "none"
    if len(layouts) > 1:
        return "mixed"
    return layouts.pop()


def _variant_report(variant: str, files: dict[str, FileReport]) -> VariantReport:
    needed = [files[name] for name in VARIANT_FILES[variant]]
    problems = [entry.message for entry in needed if not entry.ok]
    layouts = {entry.layout for entry in needed if entry.layout is not None}
    if len(layouts) > 1:
        problems.append(
            "release files and reduced test files are mixed in one folder; "
            "replace the test files with the release files"
        )
    if problems:
        summary = "; ".join(problems)
        return VariantReport(variant, False, f"not ready: {summary}", problems)
    kind = "reduced test weights" if layouts == {TEST} else "release weights"
    check = "verified" if all(entry.verified for entry in needed) else "sizes checked"
    return VariantReport(variant, True, f"ready: {len(needed)} files, {kind}, {check}")
