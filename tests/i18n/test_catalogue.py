"""The Simplified Chinese catalogue: complete, consistent with the source, compiled, and used by the pages."""

from __future__ import annotations

import gettext
import os
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.i18n.po import Entry, read_catalogue

REPOSITORY = Path(settings.BASE_DIR)
CATALOGUE = REPOSITORY / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
COMPILED = CATALOGUE.with_suffix(".mo")
# What makemessages scans: the Django project, the app and the templates. Tests, benchmarks and runtime data
# are left out, and gpu/ has no Django and so no translatable strings.
SOURCE_PATHS = ("manage.py", "flashvsr_site", "tasks_app", "templates")
PYTHON_PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifgxXeEr%]")
BRACE_PLACEHOLDER = re.compile(r"\{\w+\}")
HAN = re.compile(r"[\u4e00-\u9fff]")
# Names that stay as written in both languages.
KEPT_AS_WRITTEN = {"English", "CRF", "GPU", "SHA-256", "FlashVSR Tiny-Long", "FlashVSR Tiny", "FlashVSR Full"}


def messages() -> list[Entry]:
    return [entry for entry in read_catalogue(CATALOGUE) if not entry.is_header]


def test_catalogue_has_no_untranslated_entry():
    untranslated = [entry.msgid for entry in messages() if not entry.msgstr or not all(entry.msgstr)]
    assert untranslated == []


def test_catalogue_has_no_fuzzy_entry():
    fuzzy = [entry.msgid for entry in read_catalogue(CATALOGUE) if "fuzzy" in entry.flags]
    assert fuzzy == []


def test_catalogue_has_no_obsolete_entry():
    obsolete = [entry.msgid for entry in read_catalogue(CATALOGUE) if entry.obsolete]
    assert obsolete == []


def test_catalogue_header_sets_chinese_plural_forms():
    header = next(entry for entry in read_catalogue(CATALOGUE) if entry.is_header).msgstr[0]
    assert "Language: zh_Hans\n" in header
    assert "Plural-Forms: nplurals=1; plural=0;\n" in header


def test_translations_keep_placeholders():
    for entry in messages():
        for translation in entry.msgstr:
            for pattern in (PYTHON_PLACEHOLDER, BRACE_PLACEHOLDER):
                assert sorted(pattern.findall(translation)) == sorted(pattern.findall(entry.msgid)), (
                    entry.msgid
                )


def test_translations_are_chinese():
    for entry in messages():
        words = BRACE_PLACEHOLDER.sub("", PYTHON_PLACEHOLDER.sub("", entry.msgid))
        if not re.search(r"[A-Za-z]", words):
            continue
        if entry.msgid in KEPT_AS_WRITTEN:
            assert entry.msgstr == [entry.msgid]
        else:
            assert HAN.search(entry.msgstr[0]), f"{entry.msgid!r} is translated as {entry.msgstr[0]!r}"


def test_field_terms_stay_as_written():
    for entry in messages():
        for term in ("FlashVSR", "Tiny-Long", "Lanczos", "CRF", "H.264", "HEVC", "AdaIN", "KV"):
            if term in entry.msgid:
                assert term in entry.msgstr[0], f"{term} is missing from the translation of {entry.msgid!r}"


def test_compiled_catalogue_matches_source():
    assert COMPILED.is_file(), (
        "locale/zh_Hans/LC_MESSAGES/django.mo is missing: run manage.py compilemessages"
    )
    with COMPILED.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for entry in messages():
        if entry.msgid_plural is None:
            assert compiled.gettext(entry.msgid) == entry.msgstr[0]
        else:
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 2) == entry.msgstr[0]


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="xgettext is missing (apt-get install gettext)")
def test_makemessages_finds_no_new_message(tmp_path, settings):
    copy = tmp_path / "project"
    copy.mkdir()
    for name in SOURCE_PATHS:
        source = REPOSITORY / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, copy / name)
    shutil.copytree(REPOSITORY / "locale", copy / "locale", ignore=shutil.ignore_patterns("*.mo"))
    settings.LOCALE_PATHS = [copy / "locale"]

    previous = os.getcwd()
    os.chdir(copy)
    try:
        call_command("makemessages", locale=["zh_Hans"], verbosity=0)
    finally:
        os.chdir(previous)

    extracted = {entry.key for entry in read_catalogue(copy / CATALOGUE.relative_to(REPOSITORY))}
    extracted = {key for key in extracted if key[1]}
    committed = {entry.key for entry in messages()}
    assert sorted(extracted - committed, key=str) == [], "new messages: run makemessages and translate them"
    regenerated = read_catalogue(copy / CATALOGUE.relative_to(REPOSITORY))
    stale = sorted(entry.msgid for entry in regenerated if entry.obsolete)
    assert stale == [], "messages no longer in the source: remove them from the catalogue"
