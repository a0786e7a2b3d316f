"""YAML configuration, parsed in one place into frozen dataclasses.

``configs/default.yaml`` holds every default; a profile or a user file (``--config FILE``) is laid over
it key by key. Model geometries live in ``configs/models/<name>.yaml`` and are chosen by name
(``--model lite``) or by path. Every problem is a :class:`ConfigError` whose one-line message names the
file and the dotted key: an unknown key, a wrong type, or a conflicting pair of values.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from speech2vid.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Backend = Literal["torch", "onnxruntime", "tensorrt"]
Device = Literal["cpu", "cuda"]
Precision = Literal["fp32", "fp16", "bf16", "int8"]
# The name lists every option and check derives from (the Literal types above are the one source).
BACKENDS: tuple[str, ...] = get_args(Backend)
DEVICES: tuple[str, ...] = get_args(Device)
PRECISIONS: tuple[str, ...] = get_args(Precision)
ENGINE_PRECISIONS: tuple[str, ...] = tuple(p for p in PRECISIONS if p != "bf16")  # bf16 runs on torch only
GraphOptimization = Literal["disable", "basic", "extended", "all"]


# ----------------------------------------------------------------------------- model geometry

# Bounds that keep a model file from asking for more memory than a machine has: the paper's widest layer
# has 512 channels; at 2048 (4x) its largest convolution alone holds 150 M weights (600 MB in FP32).
MAX_WIDTH = 2048
MAX_DEBLUR_LAYERS = 64  # the paper's deblurrer has 10


@dataclass(frozen=True)
class EncoderConfig:
    """A VGG-M-like encoder: five conv widths, then fc6 and fc7 (= embedding) as convolutions."""

    channels: tuple[int, int, int, int, int]
    fc6: int
    embedding: int


@dataclass(frozen=True)
class DecoderConfig:
    """Output widths of the decoder convolutions (names as in MODEL.md); conv5_3 always has 3."""

    conv8: int
    conv1: tuple[int, int, int]
    conv2: int
    conv3: tuple[int, int]
    conv4: int
    conv5: tuple[int, int]
    # "pixels": the paper's head, conv5_* draw the 109x109 face. "warp" (lite): a motion field that moves
    # the reference face's pixels, plus a masked colour layer for the mouth interior (docs/warp_head.md).
    head: Literal["pixels", "warp"] = "pixels"


@dataclass(frozen=True)
class DeblurConfig:
    """VDSR-like residual CNN: ``layers`` 3x3 convs, ``width`` channels inside."""

    layers: int
    width: int


@dataclass(frozen=True)
class ModelConfig:
    name: str
    identity_faces: Literal[1, 5]
    audio: EncoderConfig
    identity: EncoderConfig
    decoder: DecoderConfig
    deblur: DeblurConfig
    description: str = ""
    # MFCC columns (10 ms each) of audio after a frame's centre that its window reads: 17 is the paper's
    # centred window; fewer shift the window into the past and lower the live latency
    # (features/windows.py maps frames to windows; the look-ahead is (200 + 160 R) / 16000 s).
    lookahead_columns: int = 17

    def _check(self, where: str) -> None:
        widths = (
            *self.audio.channels,
            self.audio.fc6,
            self.audio.embedding,
            *self.identity.channels,
            self.identity.fc6,
            self.identity.embedding,
            self.decoder.conv8,
            *self.decoder.conv1,
            self.decoder.conv2,
            *self.decoder.conv3,
            self.decoder.conv4,
            *self.decoder.conv5,
            self.deblur.width,
        )
        if min(widths) < 1 or max(widths) > MAX_WIDTH:
            raise ConfigError(
                f"{where}: every channel width must be an integer within 1..{MAX_WIDTH}, got "
                f"{min(widths)}..{max(widths)}"
            )
        if self.deblur.layers > MAX_DEBLUR_LAYERS:
            raise ConfigError(f"{where}: 'deblur.layers' must be at most {MAX_DEBLUR_LAYERS}, got {self.deblur.layers}")
        if self.deblur.layers < 2 and not (self.deblur.layers == 0 and self.decoder.head == "warp"):
            raise ConfigError(
                f"{where}: 'deblur.layers' must be at least 2 (first and last conv), or 0 with the warp head"
            )
        if not 0 <= self.lookahead_columns <= 17:
            raise ConfigError(f"{where}: 'lookahead_columns' must be 0..17 (17 = the centred window)")


# ----------------------------------------------------------------------------- engine + generation


# Frames per engine call at most (engine.batch.max, bench --batch): work memory grows with the batch, and
# past a few dozen frames a larger one buys no speed on any backend (docs: README, Security and reliability).
MAX_BATCH = 1024
# The longest output side (generate --size, live.photo_side): 4096 px is 4K, H.264's level 5.2 frame; one
# such frame is 50 MB as RGB bytes and 200 MB as the float work image.
MAX_SIDE = 4096


@dataclass(frozen=True)
class BatchRange:
    """Dynamic batch axis of the exported graphs (TensorRT optimisation profile min/opt/max)."""

    min: int = 1
    opt: int = 8
    max: int = 32


@dataclass(frozen=True)
class OnnxRuntimeConfig:
    graph_optimization: GraphOptimization = "all"
    intra_op_threads: int = 0  # 0: ONNX Runtime picks (one per physical core)
    inter_op_threads: int = 1
    # Idle worker threads spin for a while before sleeping: a little less latency per call, but the
    # spinning takes CPU from whatever runs beside the engine (tracking, blending, encoding).
    spin: bool = False

    def _check(self, where: str) -> None:
        # ONNX Runtime takes a negative count without complaint and then behaves as if it were 0.
        for key in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, key)
            if not 0 <= value <= MAX_THREADS:
                raise ConfigError(
                    f"{where}: 'engine.onnxruntime.{key}' must be 0 (ONNX Runtime picks) to {MAX_THREADS}, got {value}"
                )


@dataclass(frozen=True)
class TensorRTConfig:
    """TensorRT engine builds (``speech2vid build --backend tensorrt``)."""

    workspace_mb: int = 2048  # builder workspace (scratch memory) limit
    dla_core: int | None = None  # Jetson DLA core (TensorRT 10 only); null = GPU
    gpu_fallback: bool = True  # with a DLA core: layers DLA cannot run go to the GPU (logged by TensorRT)
    builder_optimization_level: int = 3  # 0..5: higher = longer builds, sometimes faster engines
    timing_cache: bool = True  # keep kernel timings in the cache folder and reuse them in later builds

    def _check(self, where: str) -> None:
        if self.workspace_mb < 16:
            raise ConfigError(f"{where}: 'engine.tensorrt.workspace_mb' must be >= 16, got {self.workspace_mb}")
        if self.dla_core is not None and self.dla_core < 0:
            raise ConfigError(f"{where}: 'engine.tensorrt.dla_core' must be null or >= 0, got {self.dla_core}")
        if not 0 <= self.builder_optimization_level <= 5:
            raise ConfigError(f"{where}: 'engine.tensorrt.builder_optimization_level' must be within 0..5")


@dataclass(frozen=True)
class EngineConfig:
    backend: Backend = "onnxruntime"
    device: Device = "cpu"
    precision: Precision = "fp32"
    batch: BatchRange = field(default_factory=BatchRange)
    opset: int = 18
    cache_dir: str = "~/.cache/speech2vid/engines"
    onnxruntime: OnnxRuntimeConfig = field(default_factory=OnnxRuntimeConfig)
    tensorrt: TensorRTConfig = field(default_factory=TensorRTConfig)

    def _check(self, where: str) -> None:
        b = self.batch
        if not 1 <= b.min <= b.opt <= b.max <= MAX_BATCH:
            raise ConfigError(
                f"{where}: 'engine.batch' needs 1 <= min <= opt <= max <= {MAX_BATCH}, got min={b.min} opt={b.opt} "
                f"max={b.max}"
            )
        if self.backend == "torch" and self.precision == "int8":
            raise ConfigError(
                f"{where}: 'engine.precision: int8' conflicts with 'engine.backend: torch' "
                "(INT8 runs as a Q/DQ graph on onnxruntime or tensorrt)"
            )
        if self.backend == "torch" and self.device == "cpu" and self.precision == "fp16":
            raise ConfigError(
                f"{where}: 'engine.precision: fp16' conflicts with 'engine.device: cpu' for the torch "
                "backend (use fp32 or bf16 on CPU, or device cuda)"
            )
        if self.backend == "tensorrt" and self.device != "cuda":
            raise ConfigError(f"{where}: 'engine.backend: tensorrt' needs 'engine.device: cuda'")


@dataclass(frozen=True)
class GenerateConfig:
    """Offline generation (``speech2vid generate``)."""

    # photo: the photo at its own resolution (shrunk to photo_max_side at most) with only
    # the lower face generated; face: the 109x109 network face alone, upscaled to output_size (frames/photo_canvas.py)
    compose: Literal["photo", "face"] = "photo"
    rest_mouth: bool = (
        True  # the identity photo's lips set to the mouth model's rest shape first (frames/photo_canvas.py)
    )
    photo_max_side: int = 1280  # px: a larger photo is shrunk to this (H.264 needs even sides; so do kiosks' GPUs)
    output_size: int = 256  # px; compose face: the 109x109 network output is upscaled to this square
    batch: int = 8  # frames per engine call
    silence_threshold_dbfs: float = -60.0
    idle: IdleBehaviour = (
        "still"  # frames without speech (vad): still | alive (blinks, sway) | off (the network's output)
    )
    prefer_int8: bool = True  # CPU + ONNX Runtime, no --precision: the INT8 engine when built (logged either way)

    def _check(self, where: str) -> None:
        if not 16 <= self.output_size <= MAX_SIDE or self.output_size % 2:
            raise ConfigError(
                f"{where}: 'generate.output_size' (--size) must be an even number within 16..{MAX_SIDE} "
                f"(H.264 4:2:0), got {self.output_size}"
            )
        if not 64 <= self.photo_max_side <= MAX_SIDE:
            raise ConfigError(
                f"{where}: 'generate.photo_max_side' (--size) must be within 64..{MAX_SIDE} px, got "
                f"{self.photo_max_side}"
            )
        if self.batch < 1:
            raise ConfigError(f"{where}: 'generate.batch' must be >= 1")
        if self.silence_threshold_dbfs > 0:
            raise ConfigError(
                f"{where}: 'generate.silence_threshold_dbfs' must be <= 0 dBFS, got {self.silence_threshold_dbfs}"
            )


@dataclass(frozen=True)
class EncodeConfig:
    """How every MP4 is written: ``generate``, ``redub`` and ``live``'s ``file://`` sinks."""

    video_codec: str = "libx264"
    crf: int = 18  # H.264 quality: 0 lossless .. 51 worst
    preset: str = "veryfast"  # offline too: medium costs twice the time at 1280 px for no smaller file (README)
    live_preset: str = "veryfast"  # live file://: the encoder must keep up with 25 fps beside the engine
    audio_codec: str = "aac"
    audio_bitrate: int = 128_000

    def _check(self, where: str) -> None:
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"{where}: 'encode.crf' must be within 0..51")
        if not 8000 <= self.audio_bitrate <= 512_000:
            raise ConfigError(f"{where}: 'encode.audio_bitrate' must be within 8000..512000 (bits/s)")
        check_codecs(self, where)

    def codec_options(self, *, live: bool = False) -> dict[str, Any]:
        """The keyword arguments of :class:`speech2vid.sinks.video_file.VideoFileSink` for these settings."""
        return {
            "video_codec": self.video_codec,
            "crf": self.crf,
            "preset": self.live_preset if live else self.preset,
            "audio_codec": self.audio_codec,
            "audio_bitrate": self.audio_bitrate,
        }


# libx264's presets, fastest first (x264 --fullhelp); other encoders take the preset they document.
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


def check_codecs(cfg: EncodeConfig, where: str) -> None:
    """The encoders and preset of ``cfg`` are ones this PyAV's FFmpeg has and takes: a typo would otherwise
    fail as a libx264 traceback when the first frame is encoded, after the slow work."""
    for key in ("preset", "live_preset"):
        value = getattr(cfg, key)
        if cfg.video_codec == "libx264" and value not in X264_PRESETS:
            raise ConfigError(
                f"{where}: 'encode.{key}' must be one of libx264's presets ({', '.join(X264_PRESETS)}), got "
                f"{_brief(value)}"
            )
    import av  # here, not at the top: parsing a config should not load FFmpeg unless it is checked

    for key, kind in (("video_codec", "video"), ("audio_codec", "audio")):
        name = getattr(cfg, key)
        try:
            codec = av.Codec(name, "w")
        except Exception:  # PyAV raises its own UnknownCodecError (a ValueError) or FFmpeg's errors
            codec = None
        if codec is None or codec.type != kind:
            raise ConfigError(
                f"{where}: 'encode.{key}' must be a {kind} encoder of this FFmpeg (e.g. "
                f"{'libx264' if kind == 'video' else 'aac'}), got {_brief(name)}"
            )


Region = Literal["lower", "full"]
Fit = Literal["loop", "trim", "pingpong"]
Blend = Literal["poisson", "alpha"]


@dataclass(frozen=True)
class RedubConfig:
    """Re-dubbing a video with new speech (``speech2vid redub``, paper section 4.3)."""

    region: Region = "lower"  # lower: from just below the eyes down inside the jaw line; full: the whole face
    fit: Fit = "loop"  # how the source video is fitted to the new audio's length
    blend: Blend = "poisson"  # poisson (cv2.seamlessClone, feathered alpha where it fails) or alpha only
    below_eyes: float = 5.0  # aligned-face px (of 112) between the lowest eye landmark and the region's top
    feather: float = 4.0  # aligned-face px: width of the alpha ramp inside the region's edge (alpha blend)
    smooth_min_cutoff: float = 1.5  # Hz, one-euro filter on the landmarks: lower = steadier when still
    smooth_beta: float = 0.05  # one-euro speed coefficient (1/px): higher = less lag when moving
    cut_jump: float = 0.5  # face-box centre jump, in face widths, that counts as a shot cut (filter reset)
    detect_every: int = 50  # frames per face detection at most; between them the mesh follows the face (1: every frame)
    track_change: float = (
        24.0  # grey levels (mean abs, face-box thumbnail) of frame-to-frame change that forces a detection
    )
    identity_samples: int = 24  # frames sampled in the first pass to pick the five identity faces
    batch: int = 8  # frames per engine call

    def _check(self, where: str) -> None:
        if self.below_eyes < 0 or self.feather < 0:
            raise ConfigError(f"{where}: 'redub.below_eyes' and 'redub.feather' must be >= 0")
        if self.smooth_min_cutoff <= 0 or self.smooth_beta < 0:
            raise ConfigError(f"{where}: 'redub.smooth_min_cutoff' must be > 0 and 'redub.smooth_beta' >= 0")
        if self.cut_jump <= 0:
            raise ConfigError(f"{where}: 'redub.cut_jump' must be > 0")
        if not 1 <= self.detect_every <= 1000 or not 0 < self.track_change <= 255:
            raise ConfigError(
                f"{where}: 'redub.detect_every' must be within 1..1000 and 'redub.track_change' within (0, 255]"
            )
        if not 1 <= self.identity_samples <= 1000 or self.batch < 1:
            raise ConfigError(f"{where}: 'redub.identity_samples' must be within 1..1000 and 'redub.batch' >= 1")


DropPolicy = Literal["drop", "repeat"]
IdleBehaviour = Literal["alive", "still", "off"]
VadDetector = Literal["silero", "level"]


@dataclass(frozen=True)
class VadConfig:
    """Voice activity (live and generate): only speech moves the lips (features/vad.py)."""

    detector: VadDetector = "silero"  # silero (Silero VAD on ONNX Runtime) | level (live.idle_threshold_dbfs gate)
    threshold: float = 0.5  # speech probability that starts speech (ends below threshold - 0.15)
    hangover_ms: float = 96.0  # non-speech this long ends a speech run (words keep their soft ends)
    preroll_ms: float = 64.0  # audio before a detected onset that also counts as speech
    pause_below_db: float = 30.0  # a pause closes the mouth: frames this far under the recent peak (0: off)

    def _check(self, where: str) -> None:
        if not 0.15 < self.threshold < 1.0:
            raise ConfigError(f"{where}: 'vad.threshold' must be within (0.15, 1), got {self.threshold}")
        if not 0 <= self.hangover_ms <= 2000 or not 0 <= self.preroll_ms <= 500:
            raise ConfigError(f"{where}: 'vad.hangover_ms' must be within 0..2000 and 'vad.preroll_ms' within 0..500")
        if not 0 <= self.pause_below_db <= 90:
            raise ConfigError(
                f"{where}: 'vad.pause_below_db' must be within 0..90 (0 turns pauses off), got {self.pause_below_db}"
            )


SuggestedLatency = Literal["low", "high"]


@dataclass(frozen=True)
class LiveConfig:
    """``speech2vid live``: capture, look-ahead, frame policy, window and kiosk. Video is always 25 fps."""

    blocksize: int = 160  # capture block at 16 kHz (10 ms): the callback's period
    latency: SuggestedLatency | float = "low"  # PortAudio suggested input latency (low, high or seconds)
    ring_seconds: float = 4.0  # capture ring: how far the loop may fall behind before audio is dropped
    # audio waited for past a frame's time (features.windows.lookahead_seconds of R = 0..17: 12.5, 22.5, ..., 182.5
    # ms); None = the model's own look-ahead
    # (a larger value than the model's is capped to it; a smaller one fills the unheard columns with silence)
    lookahead_ms: float | None = None
    drop_policy: DropPolicy = "repeat"  # engine behind: repeat (hold the last image) | drop (skip the slot)
    nice: int = -10  # the loop's threads ask for this priority (-20..19; below 0 needs CAP_SYS_NICE; 0: unchanged)
    late_ms: float = 80.0  # a frame later than look-ahead + this is counted late
    # photo: a square of the photo around the face, at its own resolution (photo_side at most), with only the
    # lower face generated (as generate's compose: photo); face: the 109x109 network face alone, upscaled
    compose: Literal["photo", "face"] = "photo"
    photo_side: int = 512  # px: the photo square's side at most (sinks scale it to their size)
    output_size: int = 256  # px of the avatar in file:// outputs
    overlay: bool = True  # fps, latency, audio level and dropped frames on display://
    window_size: tuple[int, int] = (640, 640)  # display:// width, height (ignored when fullscreen)
    avatar_scale: float = 0.8  # the avatar's side as a fraction of the window's shorter side
    background_colour: tuple[int, int, int] = (24, 24, 28)  # RGB behind the avatar
    background_image: str | None = None  # an image file instead of the colour (scaled to cover)
    fullscreen: bool = False  # borderless, cursor hidden (kiosk)
    # nobody speaks (vad): alive (still mouth, blinks, slight sway) | still (one still face) | off (always the network)
    idle: IdleBehaviour = "alive"
    idle_threshold_dbfs: float = -50.0  # vad.detector level: a frame whose heard window is quieter is silence
    idle_hold_frames: int = 8  # vad.detector level: silent frames in a row before the face goes still
    # CPU + ONNX Runtime without --precision: run the INT8 engine when it is built (logged either way)
    prefer_int8: bool = True
    # ONNX Runtime intra-op threads for live (0: engine.onnxruntime.intra_op_threads). One leaves a core to
    # capture, features, VAD and the window (the measurements: docs/live.md)
    inference_threads: int = 1
    stall_seconds: float = 1.0  # a microphone delivering nothing for this long is reopened
    # ... tried again and again (0.25 s, doubling to every 5 s) for this long while the face idles; then the
    # run ends with a clear message and valid files (systemd restarts it). 0: end at once.
    reopen_seconds: float = 300.0

    def _check(self, where: str) -> None:
        from speech2vid.features.windows import MAX_LOOKAHEAD_COLUMNS, lookahead_columns_for, lookahead_seconds

        ms = self.lookahead_ms
        if ms is not None and lookahead_columns_for(ms / 1e3) is None:
            low, step, high = (lookahead_seconds(r) * 1e3 for r in (0, 1, MAX_LOOKAHEAD_COLUMNS))
            raise ConfigError(
                f"{where}: 'live.lookahead_ms' must be {low:g} + {step - low:g} R ms for R = "
                f"0..{MAX_LOOKAHEAD_COLUMNS} "
                f"({low:g}, {step:g}, ..., {high:g}), got {self.lookahead_ms}"
            )
        if not -20 <= self.nice <= 19:
            raise ConfigError(f"{where}: 'live.nice' must be within -20..19, got {self.nice}")
        if not 16 <= self.blocksize <= 16000:
            raise ConfigError(f"{where}: 'live.blocksize' must be within 16..16000 samples (1 s), got {self.blocksize}")
        if not 0.5 <= self.ring_seconds <= 600:
            raise ConfigError(f"{where}: 'live.ring_seconds' must be within 0.5..600, got {self.ring_seconds}")
        if isinstance(self.latency, float) and not 0 < self.latency <= 10:
            raise ConfigError(
                f"{where}: 'live.latency' must be low, high or seconds within (0, 10], got {self.latency}"
            )
        if self.late_ms < 0 or self.idle_hold_frames < 0 or self.idle_threshold_dbfs > 0:
            raise ConfigError(
                f"{where}: 'live.late_ms' and 'live.idle_hold_frames' must be >= 0 and 'live.idle_threshold_dbfs' <= 0"
            )
        if self.inference_threads < 0:
            raise ConfigError(
                f"{where}: 'live.inference_threads' must be >= 0 (0: engine.onnxruntime.intra_op_threads)"
            )
        if self.inference_threads > MAX_THREADS:
            raise ConfigError(f"{where}: 'live.inference_threads' must be at most {MAX_THREADS}")
        if self.reopen_seconds < 0 or self.stall_seconds <= 0:
            raise ConfigError(f"{where}: 'live.reopen_seconds' must be >= 0 and 'live.stall_seconds' > 0")
        if not 16 <= self.output_size <= MAX_SIDE or self.output_size % 2:
            raise ConfigError(f"{where}: 'live.output_size' must be an even number within 16..{MAX_SIDE} (H.264 4:2:0)")
        if not 64 <= self.photo_side <= MAX_SIDE:
            raise ConfigError(f"{where}: 'live.photo_side' must be 64..{MAX_SIDE} px, got {self.photo_side}")
        if min(self.window_size) < 64 or max(self.window_size) > 2 * MAX_SIDE:
            raise ConfigError(
                f"{where}: 'live.window_size' must be within 64x64..{2 * MAX_SIDE}x{2 * MAX_SIDE}, got "
                f"{self.window_size}"
            )
        if not 0.1 <= self.avatar_scale <= 1.0:
            raise ConfigError(f"{where}: 'live.avatar_scale' must be within 0.1..1.0, got {self.avatar_scale}")
        if any(not 0 <= c <= 255 for c in self.background_colour):
            raise ConfigError(f"{where}: 'live.background_colour' must be three integers 0..255")

    @property
    def lookahead_columns(self) -> int | None:
        """MFCC columns past a frame's time waited for (None: as many as the model reads)."""
        from speech2vid.features.windows import lookahead_columns_for

        return None if self.lookahead_ms is None else lookahead_columns_for(self.lookahead_ms / 1e3)


CalibMethod = Literal["entropy", "percentile", "minmax"]


@dataclass(frozen=True)
class CalibConfig:
    """INT8 calibration data (``calib/``) and method."""

    source: str = "sample"  # 'sample' (bundled face + speech) or a folder of speech files and face photos
    size: int = 64  # calibration samples per graph
    method: CalibMethod = "entropy"  # entropy (KL) | percentile | minmax, for the activation ranges
    percentile: float = 99.999  # used by method 'percentile'
    seed: int = 0  # augmentation and sampling order

    def _check(self, where: str) -> None:
        if not 1 <= self.size <= 4096:
            raise ConfigError(f"{where}: 'calib.size' must be within 1..4096 samples per graph, got {self.size}")
        if not 90.0 <= self.percentile <= 100.0:
            raise ConfigError(f"{where}: 'calib.percentile' must be within 90..100, got {self.percentile}")


Optimizer = Literal["adam", "sgd"]
LrSchedule = Literal["constant", "cosine"]


@dataclass(frozen=True)
class TrainConfig:
    """``speech2vid train``: optimiser, schedule, batches, checkpoints (per rank under torchrun)."""

    optimizer: Optimizer = "adam"  # adam (shipped: trains faster) | sgd (the paper: momentum, lr 1e-5)
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    lr_schedule: LrSchedule = "cosine"  # to 0 at the run's end; constant keeps lr
    # cosine only: epochs at the full lr before the decay starts (a flat-then-anneal schedule)
    lr_hold_epochs: int = 0
    epochs: int = 20  # the paper: 20 epochs or until validation stops improving
    patience: int = 4  # stop after this many epochs without a better validation L1 (0: never)
    steps_per_epoch: int | None = None  # None: the whole train split each epoch
    val_samples: int | None = None  # None: the whole val split
    batch: int = 32  # samples per step per rank
    workers: int = 2  # DataLoader worker processes per rank
    checkpoint_every: int = 200  # steps between mid-epoch checkpoints (resume points)
    log_every: int = 10  # steps between metric lines in metrics.jsonl
    seed: int = 0
    blur_sigma: tuple[float, float] = (0.5, 2.0)  # deblur training: Gaussian blur sigma range, px
    # generator only: L1 weight of the target's rows below the template's nose tip (mouth and jaw) relative
    # to the rest (1: plain paper eq. 1); without it copying the identity face is a strong local minimum
    mouth_weight: float = 5.0
    bf16: bool = False  # CPU only: bfloat16 autocast (AVX-512 BF16 / AMX CPUs run about 1.5-2x faster)
    motion_weight: float = (
        0.0  # warp head: weight of the ground-truth motion-field + mask loss (corpora with landmarks)
    )
    pyramid_levels: int = 0  # extra L1 terms on 2x, 4x, ... pooled images (helps the warp head's motion field)
    audio_lr_mult: float = 1.0  # generator only: the audio encoder's learning rate = lr * this
    # generator with --real DATASET (real talking video): a batch of it joins every real_every-th step, its
    # image loss weighted by real_weight (no motion-field truth there)
    real_every: int = 1
    real_weight: float = 1.0

    def _check(self, where: str) -> None:
        if self.real_every < 1 or self.real_weight < 0:
            raise ConfigError(f"{where}: 'train.real_every' must be >= 1 and 'train.real_weight' >= 0")
        if self.mouth_weight < 1 or self.audio_lr_mult <= 0:
            raise ConfigError(f"{where}: 'train.mouth_weight' must be >= 1 and 'train.audio_lr_mult' > 0")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ConfigError(f"{where}: 'train.lr' must be > 0, 'train.weight_decay' >= 0, 'train.momentum' in [0, 1)")
        if not 0 <= self.lr_hold_epochs < self.epochs:
            raise ConfigError(f"{where}: 'train.lr_hold_epochs' must be >= 0 and below 'train.epochs'")
        if self.epochs < 1 or self.batch < 1 or self.workers < 0 or self.patience < 0:
            raise ConfigError(
                f"{where}: 'train.epochs' and 'train.batch' must be >= 1, 'train.workers'/'train.patience' >= 0"
            )
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ConfigError(f"{where}: 'train.checkpoint_every' and 'train.log_every' must be >= 1")
        if (self.steps_per_epoch is not None and self.steps_per_epoch < 1) or (
            self.val_samples is not None and self.val_samples < 1
        ):
            raise ConfigError(f"{where}: 'train.steps_per_epoch' and 'train.val_samples' must be >= 1 or null")
        if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ConfigError(f"{where}: 'train.blur_sigma' must be [low, high] with 0 < low <= high")


@dataclass(frozen=True)
class EvalConfig:
    """``speech2vid eval``: the helper networks trained on the train split (mouth reader, sync net)."""

    max_offset: int = 15  # frames: sync offsets searched over -max..max (at the dataset's sample stride)
    sync_steps: int = 1500  # training steps of the SyncNet-style network
    reader_steps: int = 800  # training steps of the mouth-opening reader
    batch: int = 64
    lr: float = 1e-3
    seed: int = 0
    cache_dir: str = "~/.cache/speech2vid/eval"  # trained helper networks, keyed by dataset + settings

    def _check(self, where: str) -> None:
        if self.max_offset < 0 or self.sync_steps < 1 or self.reader_steps < 1 or self.batch < 2 or self.lr <= 0:
            raise ConfigError(
                f"{where}: 'eval' needs max_offset >= 0, sync_steps/reader_steps >= 1, batch >= 2, lr > 0"
            )


@dataclass(frozen=True)
class PrepareConfig:
    """``speech2vid prepare``: real videos -> training dataset (paper section 2)."""

    sample_stride: int = 5  # every 5th frame (25 fps grid) is a sample
    identity_min_gap: int = 25  # identity faces come from frames at least this far from the target
    val_fraction: float = 0.1  # share of identity groups (speakers) held out for validation
    shot_threshold: float = 0.5  # Bhattacharyya distance of consecutive colour histograms that is a cut
    min_face_px: int = 80  # smallest face width kept (px of the video)
    detect_every: int = 5  # frames per face detection; between them each face's mesh follows its landmarks
    track_min_iou: float = 0.3  # box overlap that continues a track in the next frame
    track_max_gap: int = 8  # frames a track may miss its face and still continue (gap interpolated)
    min_track_seconds: float = 2.0  # shorter tracks are dropped
    landmark_sigma: float = 1.0  # frames: Gaussian smoothing of the landmarks over time
    max_av_offset: int = 10  # frames searched either way for the audio-video offset
    min_sync_score: float = 0.0  # a track whose mouth agrees less with the audio is not a speaker
    workers: int = 0  # parallel processes; 0 = one per CPU core

    def _check(self, where: str) -> None:
        if self.sample_stride < 1 or self.identity_min_gap < 1 or self.track_max_gap < 0 or self.max_av_offset < 0:
            raise ConfigError(
                f"{where}: 'prepare.sample_stride' and 'prepare.identity_min_gap' must be >= 1, "
                "'prepare.track_max_gap' and 'prepare.max_av_offset' >= 0"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"{where}: 'prepare.val_fraction' must be within [0, 1), got {self.val_fraction}")
        if not 0.0 < self.shot_threshold <= 1.0 or not 0.0 < self.track_min_iou <= 1.0:
            raise ConfigError(f"{where}: 'prepare.shot_threshold' and 'prepare.track_min_iou' must be within (0, 1]")
        if not 1 <= self.detect_every <= 1000:
            raise ConfigError(f"{where}: 'prepare.detect_every' must be within 1..1000, got {self.detect_every}")
        if self.min_face_px < 20 or self.min_track_seconds <= 0 or self.landmark_sigma < 0 or self.workers < 0:
            raise ConfigError(
                f"{where}: 'prepare.min_face_px' must be >= 20, 'prepare.min_track_seconds' > 0, "
                "'prepare.landmark_sigma' and 'prepare.workers' >= 0"
            )


@dataclass(frozen=True)
class SynthConfig:
    """``speech2vid synth``: the synthetic talking-face corpus (eSpeak NG speech, rendered faces)."""

    frame_size: int = 256  # px, square video frames (the face is placed with random scale/rotation/shift)
    utterance_seconds: tuple[float, float] = (6.0, 14.0)  # length range of one video (several sentences)
    val_identity_fraction: float = 0.1  # identities held out for validation (at least one when >= 2)
    crf: int = 20  # H.264 quality of the intermediate videos
    preset: str = "veryfast"
    workers: int = 0  # parallel processes; 0 = one per CPU core

    def _check(self, where: str) -> None:
        if not 128 <= self.frame_size <= MAX_SIDE or self.frame_size % 2:
            raise ConfigError(f"{where}: 'synth.frame_size' must be an even number within 128..{MAX_SIDE}")
        lo, hi = self.utterance_seconds
        if not 2.0 <= lo <= hi:
            raise ConfigError(f"{where}: 'synth.utterance_seconds' must be [min, max] with 2 <= min <= max")
        if not 0.0 <= self.val_identity_fraction < 1.0 or not 0 <= self.crf <= 51 or self.workers < 0:
            raise ConfigError(
                f"{where}: 'synth.val_identity_fraction' must be within [0, 1), 'synth.crf' 0..51, 'synth.workers' >= 0"
            )


@dataclass(frozen=True)
class Settings:
    """Everything but the model geometry; ``model`` names a file in configs/models or a path."""

    model: str = "lite"
    weights: str | None = None  # None: the bundled default weights of the model
    engine: EngineConfig = field(default_factory=EngineConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    redub: RedubConfig = field(default_factory=RedubConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    calib: CalibConfig = field(default_factory=CalibConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def _check(self, where: str) -> None:
        # Across sections: the engines are built for batches up to engine.batch.max (the TensorRT profile),
        # so a pipeline must not send more frames per call.
        for section in ("generate", "redub"):
            batch = getattr(self, section).batch
            if batch > self.engine.batch.max:
                raise ConfigError(
                    f"{where}: '{section}.batch: {batch}' is more than 'engine.batch.max: {self.engine.batch.max}'"
                    " (the largest batch the engines take): lower it or raise engine.batch.max"
                )


# ----------------------------------------------------------------------------- parsing

T = TypeVar("T", bound="DataclassInstance")  # a config dataclass

MAX_THREADS = 1024
MAX_INT = 2**31 - 1
# A config is a few KB; the cap keeps a huge or endless file (millions of keys, /dev/zero) from eating memory.
MAX_CONFIG_BYTES = 256 * 1024
# Error messages show a value, never all of it: a nested or repeated value could be gigabytes as text.
_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxlist, _BRIEF.maxtuple, _BRIEF.maxdict = 2, 4, 4, 4
_BRIEF.maxstring = _BRIEF.maxother = _BRIEF.maxlong = 60


def _brief(value: Any) -> str:
    """A bounded, one-line repr of a config value for error messages (at most a few hundred characters)."""
    return _BRIEF.repr(value).replace("\n", " ")[:200]


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.safe_load`` without aliases (``*name``): no config needs them, and a few lines of nested
    aliases expand to billions of values (the "billion laughs") in whatever walks the result."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # unannotated in types-PyYAML's Parser
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in config files; write the value out", event.start_mark
            )
        return super().compose_node(parent, index)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        n = "" if args[-1] is Ellipsis else f"{len(args)} "
        return f"a list of {n}{_type_name(args[0])}s"
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in get_args(tp))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; nested dataclasses are built recursively."""
    origin = get_origin(tp)
    bad = ConfigError(f"{where}: '{key}' must be {_type_name(tp)}, got {_brief(value)}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: '{key}' must be a mapping of keys, got {_brief(value)}")
        return _build(tp, value, where, key + ".")
    if origin is Literal:
        if value not in get_args(tp) or isinstance(value, bool) != any(isinstance(a, bool) for a in get_args(tp)):
            raise bad
        return value
    if origin in (Union, types.UnionType):
        for option in get_args(tp):
            if option is type(None) and value is None:
                return None
            if option is not type(None):
                try:
                    return _convert(value, option, key, where)
                except ConfigError:
                    continue
        raise bad
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise bad
        if args[-1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]", where) for i, v in enumerate(value))
        if len(value) != len(args):
            raise bad
        return tuple(_convert(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        if abs(value) > MAX_INT:  # no setting is near this; a huge one would only overflow further on
            raise ConfigError(f"{where}: '{key}' must be within -{MAX_INT}..{MAX_INT}, got {_brief(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if not math.isfinite(value):  # YAML's .nan and .inf: no setting means them
            raise ConfigError(f"{where}: '{key}' must be a finite number, got {_brief(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"config field type {tp!r} is not supported")  # a bug in this module, not user input


# Keys that moved to another section: an older config file gets told where they are now.
MOVED = {f"generate.{k}": f"encode.{k}" for k in ("video_codec", "crf", "preset", "audio_codec", "audio_bitrate")}


def _build(cls: type[T], data: Mapping[str, Any], where: str, prefix: str = "") -> T:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            dotted = f"{prefix}{str(key)[:80]}"
            if dotted in MOVED:
                raise ConfigError(
                    f"{where}: '{dotted}' is now '{MOVED[dotted]}' (the encode section serves generate, redub and live)"
                )
            known = ", ".join(fields)
            raise ConfigError(f"{where}: unknown key '{dotted}' (known keys here: {known})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], prefix + name, where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing key '{prefix}{name}'")
    obj = cls(**kwargs)
    check = getattr(obj, "_check", None)
    if check is not None:
        check(where)
    return obj


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)  # never more, whatever the file (a pipe, /dev/zero) holds
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.__class__.__name__}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: config files are limited to {MAX_CONFIG_BYTES // 1024} KB (a config is a few KB): "
            "is this the right file?"
        )
    try:
        data = yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 (a SafeLoader: no Python objects)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = str(getattr(exc, "problem", None) or exc).replace("\n", " ")[:200]
        raise ConfigError(f"{path}: not valid YAML{at}: {problem}") from None
    except RecursionError:  # thousands of nested brackets
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def _packaged(relative: str) -> Path:
    return Path(str(resources.files("speech2vid.configs").joinpath(relative)))


DEFAULT_CONFIG = "default.yaml"


def _profile_or_path(p: str | Path) -> Path:
    """A file path, or the name of a bundled profile (``desktop``, ``jetson``) when no such file exists."""
    path = Path(p).expanduser()
    if not path.exists() and "/" not in str(p) and _packaged(f"{p}.yaml").is_file():
        return _packaged(f"{p}.yaml")
    return path


def load_settings(*paths: str | Path, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Defaults, then each file in ``paths`` laid over them, then ``overrides`` (from CLI flags).

    Each layer is validated on its own first, so an error names the file that holds the bad key.
    """
    merged = _read_yaml(_packaged(DEFAULT_CONFIG))
    _build(Settings, merged, str(_packaged(DEFAULT_CONFIG)))
    for p in paths:
        layer = _read_yaml(_profile_or_path(p))
        merged = _merge(merged, layer)
        _build(Settings, merged, str(p))
    if overrides:
        merged = _merge(merged, overrides)
        return _build(Settings, merged, "command-line options")
    return _build(Settings, merged, "configs")


def model_names() -> list[str]:
    folder = Path(str(resources.files("speech2vid.configs").joinpath("models")))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_model_config(name_or_path: str | Path) -> ModelConfig:
    """A model geometry by name (``paper``, ``lite``) or from a YAML file."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text).expanduser()
    else:
        path = _packaged(f"models/{text}.yaml")
        if not path.is_file():
            raise ConfigError(f"unknown model '{text}': choose one of {', '.join(model_names())} or a YAML file")
    return _build(ModelConfig, _read_yaml(path), str(path))


def to_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as plain YAML/JSON-friendly data (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return typing.cast(dict[str, Any], plain(dataclasses.asdict(obj)))
