"""A small reader for gettext .po catalogues, enough for the catalogue tests without a third-party parser."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Entry:
    """One message: `msgid` ("" for the header), its plural, the translations and the `#,` flags."""

    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def is_header(self) -> bool:
        return self.msgid == "" and self.msgctxt is None

    @property
    def key(self) -> tuple[str | None, str, str | None]:
        return (self.msgctxt, self.msgid, self.msgid_plural)


def read_catalogue(path: Path) -> list[Entry]:
    """Parse `path` into entries; raises ValueError with the line number on a line it does not understand."""
    entries: list[Entry] = []
    for block in _blocks(path.read_text(encoding="utf-8")):
        entries.append(_parse_block(block, path))
    return entries


def _blocks(text: str) -> list[list[tuple[int, str]]]:
    blocks, current = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            current.append((number, line))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _parse_block(block: list[tuple[int, str]], path: Path) -> Entry:
    entry = Entry()
    field_name: str | None = None
    values: dict[str, str] = {}
    for number, raw in block:
        line = raw
        if line.startswith("#~"):
            entry.obsolete = True
            line = line[2:].strip()
            if not line:
                continue
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            if field_name is None:
                raise ValueError(f"{path}:{number}: string continuation without a keyword")
            values[field_name] += _unquote(line, path, number)
            continue
        keyword, _, rest = line.partition(" ")
        if not keyword.startswith(("msgid", "msgstr", "msgctxt")):
            raise ValueError(f"{path}:{number}: unknown line {raw!r}")
        field_name = keyword
        values[field_name] = _unquote(rest.strip(), path, number)
    entry.msgid = values.get("msgid", "")
    entry.msgid_plural = values.get("msgid_plural")
    entry.msgctxt = values.get("msgctxt")
    if "msgstr" in values:
        entry.msgstr = [values["msgstr"]]
    else:
        plural_keys = sorted((key for key in values if key.startswith("msgstr[")), key=lambda k: int(k[7:-1]))
        entry.msgstr = [values[key] for key in plural_keys]
    return entry


def _unquote(text: str, path: Path, number: int) -> str:
    if not (text.startswith('"') and text.endswith('"')):
        raise ValueError(f"{path}:{number}: expected a quoted string, got {text!r}")
    return ast.literal_eval(text)
