"""`manage.py download_weights`: fetch the FlashVSR v1.1 weight files into FLASHVSR_MODEL_DIR.

The four model files come from the Hugging Face repository with huggingface_hub (an optional dependency),
which resumes interrupted downloads and draws its own progress bars. posi_prompt.pth is not on Hugging Face;
it is fetched from the original GitHub repository, resuming a partial `.part` file with an HTTP Range request.
Files that are already complete are skipped, and every file with a published sha256 is checked at the end.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.error import URLError
from urllib.request import Request, urlopen

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gpu import assets

HF_REPO_ID = "JunhaoZhuang/FlashVSR-v1.1"
PROMPT_URL = "https://raw.githubusercontent.com/OpenImagingLab/FlashVSR/main/examples/WanVSR/prompt_tensor/posi_prompt.pth"
HUB_FILES = (assets.DIT_FILE, assets.LQ_PROJ_FILE, assets.TC_DECODER_FILE, assets.VAE_FILE)
CHUNK_BYTES = 1024 * 1024


class Command(BaseCommand):
    help = (
        "Download the FlashVSR v1.1 weights (about 6.5 GB for tiny/tiny_long, 7 GB with full) into "
        "FLASHVSR_MODEL_DIR. Needs the optional huggingface_hub package."
    )
    # The asset check would only report the files this command is about to fetch.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--variant",
            choices=("all", *assets.VARIANT_FILES),
            default="all",
            help="Fetch only the files this variant needs (default: %(default)s).",
        )
        parser.add_argument(
            "--model-dir", type=Path, default=None, help="Target folder instead of FLASHVSR_MODEL_DIR."
        )
        parser.add_argument(
            "--repo-id", default=HF_REPO_ID, help="Hugging Face repository (default: %(default)s)."
        )
        parser.add_argument("--revision", default=None, help="Branch, tag or commit of that repository.")
        parser.add_argument("--prompt-url", default=PROMPT_URL, help="URL of posi_prompt.pth.")
        parser.add_argument(
            "--no-verify", action="store_true", help="Skip the sha256 check after downloading."
        )

    def handle(self, *args, **options) -> None:
        folder = options["model_dir"] or Path(settings.FLASHVSR_MODEL_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        names = _files_for(options["variant"])
        hub_names = [name for name in names if name in HUB_FILES and not _complete(folder / name)]
        if hub_names:
            self._download_from_hub(hub_names, folder, options["repo_id"], options["revision"])
        if assets.PROMPT_FILE in names and not _complete(folder / assets.PROMPT_FILE):
            self._download_url(options["prompt_url"], folder / assets.PROMPT_FILE)
        self._report(folder, names, verify=not options["no_verify"])

    def _download_from_hub(self, names: list[str], folder: Path, repo_id: str, revision: str | None) -> None:
        try:
            import huggingface_hub
        except ImportError as error:
            raise CommandError(
                "huggingface_hub is not installed. Install it with `pip install 'huggingface_hub>=0.24'` "
                "(or the project's `download` extra), then run this command again."
            ) from error
        for name in names:
            self.stdout.write(f"Downloading {name} from {repo_id} ...")
            try:
                downloaded = huggingface_hub.hf_hub_download(
                    repo_id=repo_id, filename=name, revision=revision, local_dir=folder
                )
            except Exception as error:  # huggingface_hub raises its own HTTP and OS error types
                raise CommandError(
                    f"Downloading {name} from {repo_id} failed: {error}. Run the command again to resume."
                ) from error
            if Path(downloaded).resolve() != (folder / name).resolve():
                shutil.move(downloaded, folder / name)

    def _download_url(self, url: str, target: Path) -> None:
        partial = target.with_name(target.name + ".part")
        start = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={start}-"} if start else {}
        self.stdout.write(f"Downloading {target.name} from {url} ...")
        try:
            with urlopen(Request(url, headers=headers), timeout=60) as response:
                resumed = start and getattr(response, "status", 200) == 206
                total = _content_length(response) + (start if resumed else 0)
                with partial.open("ab" if resumed else "wb") as stream:
                    self._copy_with_progress(response, stream, start if resumed else 0, total)
        except (URLError, OSError) as error:
            raise CommandError(
                f"Downloading {target.name} from {url} failed: {error}. "
                "Run the command again to resume, or pass another --prompt-url."
            ) from error
        partial.replace(target)

    def _copy_with_progress(self, response, stream, done: int, total: int) -> None:
        while chunk := response.read(CHUNK_BYTES):
            stream.write(chunk)
            done += len(chunk)
            if total:
                self.stdout.write(f"\r  {done:,} of {total:,} bytes ({100 * done // total}%)", ending="")
        self.stdout.write("")

    def _report(self, folder: Path, names: list[str], verify: bool) -> None:
        problems = []
        for name in names:
            entry = assets.inspect_file(folder / name, verify=verify)
            if not entry.ok:
                problems.append(entry.message)
            self.stdout.write(f"  {entry.status:<12} {name}")
        if problems:
            raise CommandError(
                "Some weight files are not usable: "
                + "; ".join(problems)
                + ". Delete them and run the command again."
            )
        self.stdout.write(self.style.SUCCESS(f"The FlashVSR weights in {folder} are complete."))


def _files_for(variant: str) -> list[str]:
    if variant == "all":
        return list(assets.ALL_FILES)
    return list(assets.VARIANT_FILES[variant])


def _complete(path: Path) -> bool:
    return path.is_file() and assets.inspect_file(path).ok


def _content_length(response) -> int:
    value = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
    return int(value) if value and value.isdigit() else 0
