"""``speech2vid eval --videos``: rendered lips against a real speaker's own, and ``speech2vid grid``.

The clips in data/eval/videos are two sentences of GRID speaker s4 (CC BY 4.0, docs/data.md), a speaker
kept out of all training. The instrument is dlib's original 68-point model; the checks make sure it is
an instrument: the real clip against itself scores LMD 0 and r 1, the still frame scores r 0 and an LMD
above 0, and the mouth distance is checked against numbers worked out by hand.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from speech2vid.errors import UserError
from speech2vid.training.evaluation.real_video import (
    FIGURE_PX,
    FIGURE_TILES,
    clip_ticks,
    compare,
    loudness_r,
    mouth_distance,
)
from speech2vid.training.prepare.grid import GridSource, extract

ROOT = Path(__file__).resolve().parents[1]
EVAL_VIDEOS = ROOT / "data" / "eval" / "videos"


def face(mouth_shift: float = 0.0, scale: float = 1.0, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """68 points: eyes 40 px apart, a nose, a mouth; the lower lip (55-59, 64-67) moved down by ``mouth_shift``."""
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, (68, 2))
    pts[36:42], pts[42:48] = [30.0, 40.0], [70.0, 40.0]
    pts[27:36] = [50.0, 60.0]
    for upper, lower, x in ((61, 67, 45.0), (62, 66, 50.0), (63, 65, 55.0)):  # the inner lips face each other
        pts[upper], pts[lower] = [x, 75.0], [x, 78.0]
    pts[[55, 56, 57, 58, 59, 64, 65, 66, 67], 1] += mouth_shift
    return pts * scale + np.array(offset)


def test_mouth_distance_ignores_head_position_and_size_and_counts_lip_motion() -> None:
    assert mouth_distance(face(), face(scale=1.7, offset=(120.0, -35.0))) == pytest.approx(0.0, abs=1e-9)
    # 9 of the 20 mouth points move by 4 px, the inter-ocular distance is 40 px: 9 / 20 * 4 / 40 = 4.5 %.
    assert mouth_distance(face(), face(mouth_shift=4.0)) == pytest.approx(4.5)
    assert mouth_distance(face(scale=2.0), face(mouth_shift=4.0, scale=2.0)) == pytest.approx(4.5)


def test_compare_skips_frames_without_a_face_and_scores_motion() -> None:
    real = [face(mouth_shift=s) for s in (0.0, 2.0, 4.0, 2.0, 0.0)]
    same = compare(real, real)
    assert (same.frames, same.r_real, same.std_ratio, same.lmd) == (5, pytest.approx(1.0), pytest.approx(1.0), 0.0)
    still = compare([real[0]] * 5, real)
    assert (
        still.r_real == 0.0 and still.std_ratio == 0.0 and still.lmd == pytest.approx(np.mean([0, 2.25, 4.5, 2.25, 0]))
    )
    half = compare([face(mouth_shift=s / 2) for s in (0.0, 2.0, 4.0, 2.0, 0.0)], [*real[:4], None])
    assert half.frames == 4 and half.r_real == pytest.approx(1.0) and half.std_ratio == pytest.approx(0.5, rel=0.05)


def test_loudness_r_is_the_real_lips_against_the_sound_over_frames_with_a_face() -> None:
    shifts = [0.0, 2.0, 4.0, 2.0, 0.0, 1.0]
    real = [face(mouth_shift=s) for s in shifts]
    loud = np.array([-60.0, -40.0, -20.0, -40.0, -60.0, -50.0])
    assert loudness_r(real, loud) == pytest.approx(1.0)  # the gap grows linearly with the dB here
    assert loudness_r(real, -loud) == pytest.approx(-1.0)
    # A frame without a face is left out; the sound of a frame never counts against another's lips.
    with_gap = [*real[:2], None, *real[3:]]
    assert loudness_r(with_gap, np.where(np.arange(6) == 2, 99.0, loud)) == pytest.approx(1.0)


def test_clip_ticks_take_the_nearest_source_frame() -> None:
    assert clip_ticks(75, Fraction(25), 3 * 16000, None) == list(range(75))
    ticks = clip_ticks(90, Fraction(30), 3 * 16000, None)  # 30 fps: every sixth frame is skipped
    assert len(ticks) == 75 and ticks[:7] == [0, 1, 2, 4, 5, 6, 7]
    assert len(clip_ticks(75, Fraction(25), 2 * 16000, None)) == 50  # the sound ends first
    assert len(clip_ticks(75, Fraction(25), 3 * 16000, 1.0)) == 25  # --seconds


def test_eval_videos_on_a_held_out_real_speaker(tmp_path: Path) -> None:
    out, figure = tmp_path / "videos.json", tmp_path / "mouths.png"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "speech2vid",
            "-q",
            "eval",
            "--videos",
            str(EVAL_VIDEOS),
            "--json",
            str(out),
            "--figure",
            str(figure),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    print(run.stdout)
    assert [c["clip"] for c in result["clips"]] == sorted(p.name for p in EVAL_VIDEOS.glob("*.mp4"))
    for clip in result["clips"]:
        assert clip["frames"] == 60  # 2.4 s at 25 fps
        assert clip["real"]["lmd"] == 0.0 and clip["real"]["r_real"] == pytest.approx(1.0)  # the instrument's check
        assert clip["still"]["r_real"] == 0.0 and clip["still"]["lmd"] > 1.0  # the speaker's mouth moves
        assert clip["model"]["frames"] >= 55  # dlib finds the rendered face
        assert np.isfinite(clip["model"]["lmd"]) and -1.0 <= clip["model"]["r_real"] <= 1.0
        assert -1.0 <= clip["loudness_r"] <= 1.0
    assert result["lmd_vs_still"] == pytest.approx(result["median"]["model"]["lmd"] / result["median"]["still"]["lmd"])
    image = cv2.imread(str(figure))
    assert image.shape == (2 * (2 * FIGURE_PX + 4) + 10, FIGURE_TILES * FIGURE_PX, 3)
    assert "model LMD / still LMD" in run.stdout and "own loudness" in run.stdout


@pytest.mark.parametrize("case", ["no clips", "figure without videos", "photo frame past the end", "two modes"])
def test_eval_videos_bad_input_is_one_line(tmp_path: Path, case: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = {
        "no clips": ["--videos", str(empty)],
        "figure without videos": ["--data", str(empty), "--figure", str(tmp_path / "f.png")],
        "photo frame past the end": ["--videos", str(EVAL_VIDEOS), "--photo-frame", "500"],
        "two modes": ["--videos", str(EVAL_VIDEOS), "--data", str(empty)],
    }[case]
    run = subprocess.run(
        [sys.executable, "-m", "speech2vid", "-q", "eval", *args], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr, run.stderr


@pytest.fixture
def clone(tmp_path: Path) -> tuple[Path, str]:
    """A git repository with two clips and their alignments in one commit (and a later commit without them)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "clips").mkdir(parents=True)
    (repo / "words").mkdir()
    for name in ("b.mpg", "a.mpg"):
        (repo / "clips" / name).write_bytes(np.random.default_rng(ord(name[0])).bytes(5000))
        (repo / "words" / name.replace(".mpg", ".align")).write_text("0 100 sil\n")
    (repo / "clips" / "notes.txt").write_text("not a clip")

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "clips")
    commit = git("rev-parse", "HEAD")
    git("rm", "-rq", "clips")
    git("commit", "-qm", "gone")  # as in the real repositories: the clips live in the history only
    return repo, commit


def test_grid_extracts_the_pinned_commit_and_resumes(clone: tuple[Path, str], tmp_path: Path) -> None:
    repo, commit = clone
    source = GridSource("sx", "someone/repo", commit, "clips", "words")
    out = tmp_path / "out"
    written = extract(source, repo, out, progress=False)
    assert [p.name for p in written] == ["a.mpg", "b.mpg"]
    for p in written:
        shown = subprocess.run(
            ["git", "-C", str(repo), "show", f"{commit}:clips/{p.name}"], capture_output=True, check=True
        ).stdout
        assert p.read_bytes() == shown
    assert sorted(p.name for p in (out / "align").iterdir()) == ["a.align", "b.align"]
    assert (
        "CC BY 4.0" in (out / "LICENSE-GRID.txt").read_text()
        or "Attribution 4.0" in (out / "LICENSE-GRID.txt").read_text()
    )
    stamp = written[0].stat().st_mtime_ns
    assert extract(source, repo, out, progress=False) == written and written[0].stat().st_mtime_ns == stamp  # kept
    assert [p.name for p in extract(source, repo, tmp_path / "one", limit=1, progress=False)] == ["a.mpg"]


def test_grid_refuses_a_clone_without_the_commit(clone: tuple[Path, str], tmp_path: Path) -> None:
    repo, _ = clone
    source = GridSource("sx", "someone/repo", "1" * 40, "clips", None)
    with pytest.raises(UserError, match="git clone https://github.com/someone/repo"):
        extract(source, repo, tmp_path / "out", progress=False)
    run = subprocess.run(
        [sys.executable, "-m", "speech2vid", "grid", "--from", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "git clone" in run.stderr, run.stderr
    assert not (tmp_path / "o").exists()
