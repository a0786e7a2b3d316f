"""Builds and the cache never destroy what works (issue 23).

A build that fails (a mistyped ``--calib``, bad weights) or is stopped (SIGINT, SIGTERM) at any step
leaves the engines it was replacing byte for byte as they were: they still open and pass ``verify``; an
interrupt inside PyTorch's exporter exits like any other; ``cache prune`` refuses ages that would delete
everything or nothing; ``cache list`` says when its folder does not exist. Every test runs the real
command in a subprocess, with a private cache (``--cache-dir``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_hostile import leftovers, one_line_error, run_cli

EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
FIRST_WORDS = {signal.SIGINT: "speech2vid: interrupted", signal.SIGTERM: "speech2vid: terminated"}
RANDOM_WARNING = "RANDOM, untrained weights"


def snapshot(root: Path) -> dict[str, str]:
    """{path under ``root``: sha256} of every file: what a build must leave as it was."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def engine_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def partial_files(root: Path) -> list[Path]:
    """Every temporary name a writer uses (``.<name>.partial-<pid>``, the build's staging folder), at any depth."""
    return [p for folder in (root, *root.rglob("*")) if folder.is_dir() for p in leftovers(folder)]


def private_cache(built: Path, tmp_path: Path) -> Path:
    """A copy of a module's built cache."""
    root = tmp_path / "engines"
    shutil.copytree(built, root)
    return root


def assert_verify_passes(root: Path, precision: str, *extra: str) -> None:
    run = run_cli(
        "-q", "verify", "--precision", precision, "--backend", "onnxruntime", "--cache-dir", str(root), *extra
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 engines within tolerance, 0 outside" in run.stdout, run.stdout


def assert_int8_engines_open(root: Path) -> None:
    """What ``generate --precision int8`` does first: both engines pass their manifest check and open."""
    from speech2vid.config import EngineConfig, load_model_config
    from speech2vid.engine.factory import make_engine
    from speech2vid.model.ref import model_ref

    with make_engine(
        model_ref(load_model_config("lite"), None),
        EngineConfig(),
        backend="onnxruntime",
        precision="int8",
        cache_dir=root,
    ) as engine:
        assert engine.label.startswith("onnxruntime cpu int8")


def assert_old_engines_intact(root: Path, before: dict[str, str]) -> None:
    """The files are the ones the fixture built, byte for byte, and nothing was added."""
    assert snapshot(root) == before  # nothing deleted, nothing replaced, nothing half-written added
    assert not partial_files(root)


@pytest.fixture(scope="module")
def int8_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding the default model's INT8 engines (its FP32 graphs ship with the package)."""
    root = tmp_path_factory.mktemp("built") / "engines"
    run = run_cli("-q", "build", "--precision", "int8", "--cache-dir", str(root))
    assert run.returncode == 0, run.stderr
    return root


# -- 1. a build that cannot work leaves the working engines alone ---------------------------------------


@pytest.mark.parametrize("force", [True, False], ids=["force", "changed-recipe"])
def test_bad_calibration_folder_keeps_the_working_int8_engine(int8_built: Path, tmp_path: Path, force: bool) -> None:
    """Without --force the other calib.source is a changed recipe, so it rebuilds too: same promise."""
    root = private_cache(int8_built, tmp_path)
    before = snapshot(root)
    run = run_cli(
        "-q",
        "build",
        "--precision",
        "int8",
        *(["--force"] if force else []),
        "--calib",
        str(tmp_path / "typo"),
        "--cache-dir",
        str(root),
    )
    one_line_error(run, f"calibration folder not found: {tmp_path / 'typo'}")
    assert_old_engines_intact(root, before)
    assert_verify_passes(root, "int8")  # was: "no engine was verified", and generate: "missing engine"


@pytest.mark.parametrize("weights", ["missing", "not-safetensors"])
def test_bad_weights_keep_the_working_int8_engine(int8_built: Path, tmp_path: Path, weights: str) -> None:
    root = private_cache(int8_built, tmp_path)
    before, folders = snapshot(root), engine_folders(root)
    path = tmp_path / "w.safetensors"
    if weights == "not-safetensors":
        path.write_bytes(b"PK\x03\x04 a zip, not a safetensors file")
    run = run_cli("-q", "build", "--precision", "int8", "--force", "--weights", str(path), "--cache-dir", str(root))
    one_line_error(run, "weights file not found" if weights == "missing" else "is not a safetensors file")
    assert engine_folders(root) == folders  # no empty folder for the weights that failed
    assert_old_engines_intact(root, before)
    assert_int8_engines_open(root)


def _wait_for_line(start: str, proc: subprocess.Popen[str], lines: list[str]) -> None:
    """Read the build's log until a line starts with ``start``; the build must not end first."""
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(start):
            return
    raise AssertionError("the build ended before the step was reached:\n" + "".join(lines))


def _stopped_build(argv: list[str], step_line: str, signum: int, cwd: Path) -> tuple[int, str]:
    """Run the CLI, send ``signum`` as soon as it logs a line starting with ``step_line``, and return
    (exit status, stderr). The quantiser writes a scratch model into the working folder: ``cwd`` holds it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "speech2vid", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
    )
    lines: list[str] = []
    try:
        _wait_for_line(step_line, proc, lines)
        proc.send_signal(signum)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, "".join(lines) + rest


def assert_stopped_cleanly(code: int, stderr: str, signum: int) -> None:
    assert code == EXIT_STATUS[signum], stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith(FIRST_WORDS[signum]), stderr


# The steps of an INT8 rebuild, by the log line that starts each: calibration on real inputs, the
# quantiser at work on the identity graph, and the moment its file is written with the frame graph next.
INT8_STEPS = {
    "calibrate": "calibration data:",
    "quantize": "step 2 (calibration data) done",
    "write": "quantised identity-fp32-onnxruntime.onnx",
}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("step", list(INT8_STEPS))
def test_forced_int8_build_stopped_at_any_step_keeps_the_old_engine(
    int8_built: Path, tmp_path: Path, step: str, signum: int
) -> None:
    root = private_cache(int8_built, tmp_path)
    before = snapshot(root)
    code, stderr = _stopped_build(
        ["build", "--precision", "int8", "--force", "--cache-dir", str(root)], INT8_STEPS[step], signum, tmp_path
    )
    assert_stopped_cleanly(code, stderr, signum)
    assert not list(tmp_path.glob("augmented_model*"))
    assert_old_engines_intact(root, before)
    assert_int8_engines_open(root)


def test_forced_int8_build_that_completes_replaces_both_engines(int8_built: Path, tmp_path: Path) -> None:
    root = private_cache(int8_built, tmp_path)
    before = snapshot(root)
    run = subprocess.run(
        [sys.executable, "-m", "speech2vid", "-q", "build", "--precision", "int8", "--force", "--cache-dir", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0 and run.stdout.count(" built ") == 2, run.stdout + run.stderr
    after = snapshot(root)
    manifests = [name for name in before if name.endswith(".json")]
    assert len(manifests) == 2 and all(after[m] != before[m] for m in manifests)  # both rewritten (build time, date)
    assert set(after) == set(before) and not partial_files(root)
    assert_verify_passes(root, "int8")


# Sends the signal from inside ``torch.export``'s first import of torch._dynamo: where a Ctrl-C a few
# seconds into a first export lands, and what the exporter turned into a TorchExportError.
INTERRUPT_INSIDE_EXPORT = """
import signal, sys
from pathlib import Path

marker, signame, *argv = sys.argv[1:]

class InterruptOnImport:
    fired = False

    def find_spec(self, name, path=None, target=None):
        if name == "torch._dynamo.cache_size" and not InterruptOnImport.fired:
            InterruptOnImport.fired = True
            Path(marker).write_text(name)
            signal.raise_signal(getattr(signal, signame))
        return None

sys.meta_path.insert(0, InterruptOnImport())
from speech2vid.cli import main
sys.exit(main(argv))
"""


def build_interrupted_inside_export(
    tmp_path: Path, root: Path, signum: int, *args: str
) -> subprocess.CompletedProcess[str]:
    """``speech2vid -q build --weights random ARGS`` with ``signum`` sent from inside the exporter: the one
    place of a build's export step that gives no log line or file to wait for (it takes seconds)."""
    marker = tmp_path / "fired"
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            INTERRUPT_INSIDE_EXPORT,
            str(marker),
            signal.Signals(signum).name,
            "-q",
            "build",
            "--weights",
            "random",
            *args,
            "--cache-dir",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert marker.read_text() == "torch._dynamo.cache_size"  # the signal was sent inside the exporter
    run.stderr = "\n".join(ln for ln in run.stderr.splitlines() if ln.strip() and RANDOM_WARNING not in ln)
    return run


@pytest.fixture(scope="module")
def random_export(int8_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding the FP32 export of random weights (PyTorch): the step a forced FP32 build redoes."""
    root = tmp_path_factory.mktemp("exported") / "engines"
    run = run_cli("-q", "build", "--weights", "random", "--cache-dir", str(root))
    assert run.returncode == 0, run.stderr
    return root


@pytest.mark.slow  # an FP32 export with PyTorch, then verify against PyTorch
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_forced_export_stopped_keeps_the_old_export(random_export: Path, tmp_path: Path, signum: int) -> None:
    root = private_cache(random_export, tmp_path)
    before = snapshot(root)
    run = build_interrupted_inside_export(tmp_path, root, signum, "--force")
    assert_stopped_cleanly(run.returncode, run.stderr, signum)
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert_old_engines_intact(root, before)
    assert_verify_passes(root, "fp32", "--weights", "random")


def test_an_interrupt_during_the_swap_is_handled_once_every_engine_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two renames per engine (file, then manifest): a Ctrl-C between them would pair the new file with
    the old manifest. It is held until both engines are in place, then raised as usual."""
    from speech2vid.engine.cache import EngineFile, install_engines

    folder, stage = tmp_path / "lite-0123456789ab", tmp_path / "lite-0123456789ab" / ".build.partial-1"
    stage.mkdir(parents=True)
    pairs = []
    for graph in ("identity", "frame"):
        new, old = (
            EngineFile(
                graph,
                "onnxruntime",
                "int8",
                "lite",
                "0" * 64,
                d / f"{graph}-int8-onnxruntime.onnx",
                d / f"{graph}-int8-onnxruntime.json",
            )
            for d in (stage, folder)
        )
        for entry, what in ((new, "new"), (old, "old")):
            entry.path.write_text(f"{what} {graph} engine")
            entry.manifest_path.write_text(f"{what} {graph} manifest")
        pairs.append((new, old))
    real_replace, renames = os.replace, []

    def replace_then_interrupt(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        real_replace(src, dst)
        renames.append(Path(dst).name)
        if len(renames) == 1:  # the first engine file is in place, its manifest not yet
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        install_engines(pairs)
    assert len(renames) == 4  # the interrupt was raised after the last rename, not after the first
    for _, old in pairs:
        assert old.path.read_text().startswith("new") and old.manifest_path.read_text().startswith("new")


# -- 2. Ctrl-C inside PyTorch's exporter -----------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_inside_the_exporter_exits_in_one_line(tmp_path: Path, signum: int) -> None:
    """A first build of new weights, stopped in its export: was a 126-line chained traceback, exit 1."""
    root = tmp_path / "engines"
    run = build_interrupted_inside_export(tmp_path, root, signum)
    assert_stopped_cleanly(run.returncode, run.stderr, signum)
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert not root.exists() or not any(root.rglob("*"))  # no engine folder, empty or not, no partial file


# -- 3 and 4. cache prune's ages, cache list's folder -----------------------------------------------------


def _engine_folder(root: Path, name: str, days_unused: float) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "frame-int8-onnxruntime.onnx").write_bytes(b"\0" * 1000)
    when = time.time() - days_unused * 86400
    os.utime(folder, (when, when))
    return folder


AGES_THAT_ARE_NOT_DAYS = ["-1", "-0.5", "nan", "inf", "-inf"]  # -1 deleted every folder, nan silently none


@pytest.mark.parametrize("age", AGES_THAT_ARE_NOT_DAYS)
def test_prune_refuses_ages_that_are_not_a_number_of_days(tmp_path: Path, age: str) -> None:
    root = tmp_path / "engines"
    folders = [_engine_folder(root, "lite-aaaaaaaaaaaa", 1), _engine_folder(root, "lite-bbbbbbbbbbbb", 400)]
    run = run_cli("cache", "prune", f"--older-than={age}", "--cache-dir", str(root))
    one_line_error(run, "--older-than")  # the CLI's option check or the library's: either names the option
    assert not run.stdout and all(f.is_dir() for f in folders)


@pytest.mark.parametrize("age", AGES_THAT_ARE_NOT_DAYS)
def test_prune_cache_refuses_them_whoever_calls_it(tmp_path: Path, age: str) -> None:
    from speech2vid.engine.cache import prune_cache
    from speech2vid.errors import UserError

    root = tmp_path / "engines"
    folders = [_engine_folder(root, "lite-aaaaaaaaaaaa", 1), _engine_folder(root, "lite-bbbbbbbbbbbb", 400)]
    with pytest.raises(UserError, match=rf"^--older-than must be a number of days, 0 or more, got {float(age)}$"):
        prune_cache(root, older_than_days=float(age))
    assert all(f.is_dir() for f in folders)


def test_prune_still_takes_real_ages(tmp_path: Path) -> None:
    root = tmp_path / "engines"
    recent, old = _engine_folder(root, "lite-aaaaaaaaaaaa", 1), _engine_folder(root, "lite-bbbbbbbbbbbb", 400)
    run = run_cli("cache", "prune", "--older-than", "30", "--cache-dir", str(root))
    assert run.returncode == 0 and "pruned 1 folders" in run.stdout, run.stderr
    assert recent.is_dir() and not old.exists()


def test_cache_list_says_when_its_folder_does_not_exist(tmp_path: Path) -> None:
    """Exit 0, not a user error: a fresh install has built nothing yet and its cache folder does not exist
    either. But the one line says the folder does not exist, where "0 folders" hid a mistyped --cache-dir."""
    missing = tmp_path / "typo"
    for action in (["list"], ["prune", "--keep", "1"]):
        run = run_cli("cache", *action, "--cache-dir", str(missing))
        assert run.returncode == 0 and not run.stderr, run.stderr
        assert run.stdout.splitlines() == [
            f"engine cache {missing} does not exist: nothing is cached there"
            " (another folder: --cache-dir DIR or engine.cache_dir)"
        ]
    assert not missing.exists()  # listing or pruning creates nothing
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    run = run_cli("cache", "list", "--cache-dir", str(a_file))
    assert run.returncode == 0 and run.stdout.startswith(f"engine cache {a_file} is not a folder:"), run.stdout
    # Options are still checked where there is nothing to prune.
    one_line_error(run_cli("cache", "prune", "--keep=-1", "--cache-dir", str(missing)), "--keep")


def test_staging_folders_of_killed_builds_are_removed_by_the_next_build(tmp_path: Path) -> None:
    """SIGKILL skips every clean-up: the next build into the folder removes this host's dead builds' staging
    folders, and leaves another host's (a shared cache) and a live process's alone."""
    from speech2vid.engine.cache import staging
    from speech2vid.files import host_tag

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    here = host_tag()
    folder = tmp_path / "lite-0123456789ab"
    stale = folder / f".build.partial-{here}-{child.pid}-x1y2"
    others = [folder / f".build.partial-{here}x-{child.pid}-x1y2", folder / f".build.partial-{here}-{os.getpid()}-abcd"]
    for d in (stale, *others):
        d.mkdir(parents=True)
        (d / "frame.onnx").write_bytes(b"\x08" * 1000)
    with staging(folder) as stage:
        assert stage.is_dir() and here in stage.name
    assert not stale.exists() and all(d.is_dir() for d in others)
