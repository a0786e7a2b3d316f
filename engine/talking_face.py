"""The engine the runtime talks to: identity graph once, frame graph per video frame.

It hides which backend runs the graphs and converts between the runtime's image layout (RGB uint8
HxWx3, frames float HxWx3 in [0, 1]) and the graphs' NCHW tensors.
"""

from __future__ import annotations

import numpy as np

from speech2vid.engine.base import N_SLOTS, Runner
from speech2vid.errors import EngineError
from speech2vid.features.windows import N_CEPS, WINDOW_COLS
from speech2vid.model.io_spec import FACE_SIZE, FACES, FRAME, MFCC, MOTION


def stack_faces(faces: list[np.ndarray] | np.ndarray, count: int) -> np.ndarray:
    """K aligned faces (112, 112, 3) uint8 RGB -> (1, 3*count, 112, 112) float32 raw 0-255.

    Fewer photos than the model takes are repeated in turn (one photo fills all five slots).
    """
    faces = list(faces)
    if not faces:
        raise EngineError("no identity face given")
    for f in faces:
        if f.shape != (FACE_SIZE, FACE_SIZE, 3):
            raise EngineError(f"identity faces must be {FACE_SIZE}x{FACE_SIZE}x3, got {f.shape}")
    chosen = [faces[i % len(faces)] for i in range(count)]
    stacked = np.concatenate([np.transpose(f, (2, 0, 1)) for f in chosen], axis=0)
    return np.ascontiguousarray(stacked[None].astype(np.float32))


MIN_OUTPUT_RANGE = 1e-6  # of frame values in [0, 1]: less is a constant picture (zeroed or dead weights)
# The two probe windows must change some pixel of the frame by more than this (frame values in [0, 1]).
# A model whose frames do not depend on the audio renders a face that never moves: all-zero or constant
# weights make the audio branch's features the same for every input, so both probe frames come out
# bit-identical. The bar sits a few float32 steps (6e-8 below 1.0) above that, so rounding differences
# between the items of a batch do not pass for speech. The faintest working model is untrained
# (`--weights random`): its audio features reach the frames through a long chain of untrained ReLU
# layers, weakly; tests/test_input_checks.py keeps it, and the bundled weights at FP32, FP16 and INT8,
# well above the bar.
MIN_AUDIO_EFFECT = 2.5e-7
# Detail on the probe face: the warp head moves the photo's pixels, and a motion shows only where the
# picture changes from pixel to pixel (a smooth ramp alone hides most of it). Periods in pixels.
PROBE_TEXTURE_PERIODS = (7, 9)
PROBE_TEXTURE_AMPLITUDE = 60.0  # grey levels
PROBE_RAMP_OFFSET = 64.0  # grey levels: the ramp at half strength, lifted to the middle where the texture fits


def probe_inputs() -> tuple[np.ndarray, np.ndarray]:
    """The probe face (112, 112, 3) uint8 and two different MFCC windows (2, 12, 35) float32 (silence and
    a ramp across every cepstrum): a patterned picture, not a face, so that no trained weights are needed."""
    ramp = np.linspace(0, 255, FACE_SIZE, dtype=np.float32)
    gradient = np.stack(
        [np.add.outer(ramp, ramp) / 2, np.add.outer(ramp, 255 - ramp) / 2, np.outer(ramp, ramp) / 255], -1
    )
    y, x = np.mgrid[0:FACE_SIZE, 0:FACE_SIZE].astype(np.float32)
    px, py = PROBE_TEXTURE_PERIODS
    texture = PROBE_TEXTURE_AMPLITUDE * np.sin(2 * np.pi * x / px) * np.sin(2 * np.pi * y / py)
    face = np.clip(gradient / 2 + PROBE_RAMP_OFFSET + texture[..., None], 0, 255).astype(np.uint8)
    windows = np.stack(
        [
            np.zeros((N_CEPS, WINDOW_COLS), np.float32),
            np.linspace(-20, 20, N_CEPS * WINDOW_COLS, dtype=np.float32).reshape(N_CEPS, WINDOW_COLS),
        ]
    )
    return face, windows


def audio_effect(frames: np.ndarray) -> float:
    """The largest change of any pixel value between the two probe frames (2, 109, 109, 3) in [0, 1]."""
    return float(np.abs(frames[0] - frames[1]).max())


class TalkingFaceEngine:
    """``set_identity`` once, then ``render`` (or ``submit``/``collect``) MFCC windows into frames."""

    def __init__(
        self, identity: Runner, frame: Runner, identity_faces: int, label: str = "", lookahead_columns: int = 17
    ):
        self.identity_runner = identity
        self.frame_runner = frame
        self.identity_faces = identity_faces
        # The model's right context (features/windows.py): every caller cuts windows with it.
        self.lookahead_columns = lookahead_columns
        self.label = label or f"{frame.backend}"
        self._identity: dict[str, np.ndarray] | None = None

    def open(self) -> "TalkingFaceEngine":
        self.identity_runner.open()
        try:
            self.frame_runner.open()
            self._probe()
        except BaseException:
            self.frame_runner.close()
            self.identity_runner.close()
            raise
        return self

    def _probe(self) -> None:
        """Refuse, at open, weights or an engine file whose output is NaN, infinite, one flat colour, or the
        same for two different MFCC windows, on a patterned probe face: every backend passes here, and
        without this a broken model renders a black video, or a face that never moves, and exits 0."""
        face, windows = probe_inputs()
        try:
            self.set_identity([face])
            identity = list((self._identity or {}).values())
            frames = self.render(windows)
        finally:
            self._identity = None
        if not all(np.isfinite(t).all() for t in identity) or not np.isfinite(frames).all():
            what = "non-finite values (NaN or infinity)"
        elif float(np.ptp(frames)) < MIN_OUTPUT_RANGE:
            what = f"one flat colour ({float(frames.flat[0]):.3g} everywhere)"
        elif audio_effect(frames) < MIN_AUDIO_EFFECT:
            what = "the same frame for different speech (a face that never moves: all-zero or constant weights?)"
        else:
            return
        raise EngineError(
            f"the {self.label} engine outputs {what} on a probe input: the weights or the engine"
            " file are broken; use other weights (an earlier checkpoint), or rebuild the engine"
        )

    def close(self) -> None:
        self.frame_runner.close()
        self.identity_runner.close()

    def __enter__(self) -> "TalkingFaceEngine":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_identity(self, faces: list[np.ndarray] | np.ndarray) -> None:
        """Encode the identity once; its features feed every later frame."""
        out = self.identity_runner.infer({FACES: stack_faces(faces, self.identity_faces)})
        # Every output of the identity graph feeds the frame graph (io_spec.identity_feature_specs).
        self._identity = {k: np.ascontiguousarray(v) for k, v in out.items()}

    @property
    def identity_features(self) -> dict[str, np.ndarray] | None:
        """The cached identity tensors (``io_spec.identity_feature_specs``), or None before ``set_identity``."""
        return self._identity

    def _feeds(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        if self._identity is None:
            raise RuntimeError("set_identity() must be called before rendering")
        mfcc = np.ascontiguousarray(windows.reshape(-1, 1, N_CEPS, WINDOW_COLS), dtype=np.float32)
        return {MFCC: mfcc, **self._identity}

    @staticmethod
    def _frames(out: dict[str, np.ndarray]) -> np.ndarray:
        return np.transpose(out[FRAME], (0, 2, 3, 1))  # (B, 109, 109, 3)

    @staticmethod
    def _faces(out: dict[str, np.ndarray]) -> np.ndarray:
        """The frames with the warp head's motion appended on the channel axis (``frames.rendered``)."""
        if MOTION not in out:
            return TalkingFaceEngine._frames(out)
        return np.transpose(np.concatenate([out[FRAME], out[MOTION]], axis=1), (0, 2, 3, 1))  # (B, 109, 109, 9)

    def render(self, windows: np.ndarray) -> np.ndarray:
        """(B, 12, 35) MFCC windows -> (B, 109, 109, 3) float32 RGB frames in [0, 1]."""
        return self._frames(self.frame_runner.infer(self._feeds(windows)))

    def render_faces(self, windows: np.ndarray) -> np.ndarray:
        """As :meth:`render`, with the motion appended where the model has one: (B, 109, 109, 3 or 9)."""
        return self._faces(self.frame_runner.infer(self._feeds(windows)))

    def submit(self, slot: int, windows: np.ndarray) -> None:
        self.frame_runner.submit(slot, self._feeds(windows))

    def collect(self, slot: int) -> np.ndarray:
        return self._frames(self.frame_runner.collect(slot))

    def collect_faces(self, slot: int) -> np.ndarray:
        """As :meth:`collect`, with the motion appended where the model has one (``frames.rendered``)."""
        return self._faces(self.frame_runner.collect(slot))

    n_slots = N_SLOTS
