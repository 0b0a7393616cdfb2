import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
READ_CALL = re.compile(r"\b(?:env_[a-z]+|read_secret)\(\s*\"([A-Z][A-Z0-9_]+)\"")
# read_secret("NAME") also reads the file named by NAME_FILE.
SECRET_CALL = re.compile(r"\bread_secret\(\s*\"([A-Z][A-Z0-9_]+)\"")


def variables_read_by_settings() -> set[str]:
    names = set()
    for path in (REPO_ROOT / "flashvsr_site").glob("settings*.py"):
        text = path.read_text()
        names.update(READ_CALL.findall(text))
        names.update(f"{name}_FILE" for name in SECRET_CALL.findall(text))
    return names


def variables_in_docs() -> set[str]:
    text = (REPO_ROOT / "docs" / "settings.md").read_text()
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", text, flags=re.MULTILINE))


def test_settings_doc_lists_every_variable():
    read = variables_read_by_settings()
    assert "FLASHVSR_MAX_UPLOAD_BYTES" in read
    missing = sorted(read - variables_in_docs())
    assert missing == [], f"add these variables to the table in docs/settings.md: {missing}"


def test_settings_doc_lists_no_unknown_variable():
    script_only = {"PYTHON", "FLASHVSR_SKIP_INSTALL", "Q_CLUSTER_NAME"}
    stale = sorted(variables_in_docs() - variables_read_by_settings() - script_only)
    assert stale == [], f"these documented variables are not read by the settings: {stale}"
