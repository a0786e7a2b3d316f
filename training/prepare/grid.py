"""The GRID audio-visual corpus (Cooke, Barker, Cunningham & Shao 2006; CC BY 4.0), read from a clone of a
public repository that holds it in its history: ``speech2vid grid --from CLONE -o DIR``.

GRID's own server is not reachable from where this project is built, but two public GitHub repositories
committed clips of it: every file is read from a pinned commit (git checks each blob's hash), so what is
extracted is exactly what these docs describe. Nothing is downloaded here: the user clones the repository.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from speech2vid.errors import UserError
from speech2vid.files import atomic_path

LICENCE = """\
GRID audio-visual sentence corpus: Martin Cooke, Jon Barker, Stuart Cunningham and Xu Shao (2006),
"An audio-visual corpus for speech perception and automatic speech recognition", JASA 120(5):2421-2424.
Licence: Creative Commons Attribution 4.0 International (https://creativecommons.org/licenses/by/4.0/),
https://doi.org/10.5281/zenodo.3625687 . Extracted unchanged from {repo} at commit {commit}, folder {folder}.
"""


@dataclass(frozen=True)
class GridSource:
    speaker: str
    repo: str  # GitHub owner/name
    commit: str
    folder: str  # the clips' folder at that commit
    align_folder: str | None  # word alignments (.align), where the repository has them

    @property
    def clone_url(self) -> str:
        return f"https://github.com/{self.repo}"


SOURCES = {
    # speaker 1 (male): 1000 clips, 360x288 MPEG-1 at 25 fps with their audio, word alignments; about 440 MB
    "s1": GridSource(
        "s1",
        "osalinasv/lipnet",
        "2149e39d8ea90b6832e53b966c689c1c1eddaec4",
        "preprocessing/detect-face-parts/pruebas/videos/s1",
        "preprocessing/alignment/s1/align",
    ),
    # speaker 4 (female): 50 clips, 720x576 MPEG-1 at 25 fps with their audio; about 125 MB
    "s4": GridSource("s4", "arielephrat/vid2speech", "493d26b2db76b5b45ed4682da215203d899f12b6", "dataset", None),
}


def _git(clone: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(clone), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise UserError(
            "git is not installed: install it (apt-get install git) to read the corpus from a clone"
        ) from None
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)
    return done.stdout


def _files(clone: Path, commit: str, folder: str, suffix: str) -> list[tuple[str, str]]:
    """(name, blob id) of the files of ``folder`` at ``commit`` ending in ``suffix``, sorted by name."""
    out = []
    for entry in _git(clone, "ls-tree", "-z", f"{commit}:{folder}").split(b"\0"):
        if not entry:
            continue
        meta, name = entry.decode().split("\t", 1)
        _, kind, blob = meta.split()
        if kind == "blob" and name.lower().endswith(suffix):
            out.append((name, blob))
    return sorted(out)


def check_clone(source: GridSource, clone: Path) -> None:
    """A one-line error unless ``clone`` is a git repository holding the source's commit."""
    how = f"clone it whole first: git clone {source.clone_url}"
    if not clone.is_dir():
        raise UserError(f"--from {clone} is not a folder: {how}")
    try:  # a missing git is said by _git
        _git(clone, "cat-file", "-e", f"{source.commit}^{{commit}}")
    except subprocess.CalledProcessError:
        raise UserError(
            f"{clone} does not hold commit {source.commit[:12]} of {source.repo} (a shallow or other clone?): {how}"
        ) from None


def extract(
    source: GridSource, clone: Path, out: Path, *, limit: int | None = None, progress: bool = True
) -> list[Path]:
    """Write the source's clips (and word alignments) into ``out``; files already there with the right size
    are kept, so an interrupted extraction resumes. Returns the clips' paths."""
    from tqdm import tqdm

    check_clone(source, clone)
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out} is a file: give a folder for the clips")
    clips = _files(clone, source.commit, source.folder, ".mpg")[:limit]
    if not clips:
        raise UserError(f"no .mpg clips in {source.folder} at {source.commit[:12]} of {clone}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, blob in tqdm(clips, unit="clip", desc=f"GRID {source.speaker}", disable=not progress):
        written.append(_write_blob(clone, blob, out / name))
    if source.align_folder is not None:
        stems = {Path(n).stem for n, _ in clips}
        (out / "align").mkdir(exist_ok=True)
        for name, blob in _files(clone, source.commit, source.align_folder, ".align"):
            if Path(name).stem in stems:
                _write_blob(clone, blob, out / "align" / name)
    with atomic_path(out / "LICENSE-GRID.txt", ".txt") as tmp:
        tmp.write_text(LICENCE.format(repo=source.repo, commit=source.commit, folder=source.folder))
    return written


def _write_blob(clone: Path, blob: str, path: Path) -> Path:
    size = int(_git(clone, "cat-file", "-s", blob))
    if path.is_file() and path.stat().st_size == size:
        return path
    with atomic_path(path, path.suffix) as tmp:
        tmp.write_bytes(_git(clone, "cat-file", "blob", blob))
    return path
