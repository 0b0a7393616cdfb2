"""README.zh-CN.md mirrors README.md: the same sections, commands and links, in the same order."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

ENGLISH = Path(settings.BASE_DIR) / "README.md"
CHINESE = Path(settings.BASE_DIR) / "README.zh-CN.md"
CODE_BLOCK = re.compile(r"```\w*\n(.*?)```", re.S)
LINK_TARGET = re.compile(r"\]\(([^)]+)\)")
INLINE_CODE = re.compile(r"`([^`]+)`")


def test_readmes_have_same_section_count():
    english = re.findall(r"^## ", ENGLISH.read_text(), re.M)
    chinese = re.findall(r"^## ", CHINESE.read_text(), re.M)
    assert len(chinese) == len(english)


def test_readmes_have_same_commands():
    assert CODE_BLOCK.findall(CHINESE.read_text()) == CODE_BLOCK.findall(ENGLISH.read_text())


def test_readmes_have_same_links_and_names():
    english, chinese = ENGLISH.read_text(), CHINESE.read_text()
    english_links = [link for link in LINK_TARGET.findall(english) if link != "README.zh-CN.md"]
    chinese_links = [link for link in LINK_TARGET.findall(chinese) if link != "README.md"]
    assert chinese_links == english_links
    assert inline_code(chinese) == inline_code(english)


def inline_code(text: str) -> list[str]:
    """Return the distinct `code` spans outside code blocks, with line breaks inside a span made spaces."""
    spans = INLINE_CODE.findall(CODE_BLOCK.sub("", text))
    return sorted({" ".join(span.split()) for span in spans})
