"""The contract between the model and every engine: tensor names, shapes and dtypes of the two graphs.

Speech2Vid runs as two graphs so that the identity is encoded once and cached:

* identity graph: ``faces`` (N, 3*K, 112, 112) raw 0-255 RGB, K faces stacked on channels
  -> ``id_embedding`` (N, E) and the decoder skips ``skip_a`` / ``skip_b`` / ``skip_c``;
* frame graph: ``mfcc`` (N, 1, 12, 35) plus the cached identity tensors -> ``frame`` (N, 3, 109, 109)
  RGB in [0, 1], and for the warp head ``motion`` (N, 6, 109, 109): the flow (x, y, in face pixels: the
  frame's pixel p shows the reference's pixel p + flow), the mask (where the drawn colour replaces the
  moved reference, 0..1) and that colour (RGB 0..1). With the motion a composite can move the photo's own
  pixels at its full resolution (frames/photo_canvas.py). The identity tensors may have batch 1 (one
  identity for a whole batch of windows, broadcast inside the graph) or N.

A batch size of -1 marks the dynamic axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speech2vid.config import ModelConfig
from speech2vid.faces.template import ALIGNED_SIZE
from speech2vid.features.windows import N_CEPS, WINDOW_COLS

FACE_SIZE = ALIGNED_SIZE  # aligned identity face, 112 px (faces.template names it)
OUTPUT_SIZE = 109  # generated face, px: the central crop of the aligned 112x112 face
CROP_OFFSET = (FACE_SIZE - OUTPUT_SIZE) // 2  # 1: the target is face[1:110, 1:110]

# Spatial sizes of the identity skips (MODEL.md): conv1 -> A, pool1 -> B, conv2 -> C.
SKIP_A_SIZE, SKIP_B_SIZE, SKIP_C_SIZE = 53, 26, 12

FACES, MFCC = "faces", "mfcc"
ID_EMBEDDING, SKIP_A, SKIP_B, SKIP_C = "id_embedding", "skip_a", "skip_b", "skip_c"
REFERENCE = "reference"  # warp head only: the face whose pixels the motion field moves, (N, 3, 109, 109) in [0, 1]
FRAME = "frame"
MOTION = "motion"  # warp head only: flow x, y (face px), mask, colour R, G, B
MOTION_CHANNELS = 6
IDENTITY_FEATURES = (
    ID_EMBEDDING,
    SKIP_A,
    SKIP_B,
    SKIP_C,
)  # every head; identity_feature_specs adds REFERENCE for "warp"

IDENTITY_GRAPH = "identity"
FRAME_GRAPH = "frame"
GRAPHS = (IDENTITY_GRAPH, FRAME_GRAPH)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # -1 = dynamic batch
    dtype: np.dtype

    def describe(self) -> str:
        dims = "x".join("N" if d == -1 else str(d) for d in self.shape)
        return f"{self.name} {dims} {np.dtype(self.dtype).name}"

    def matches(self, shape: tuple[int | str | None, ...], dtype: np.dtype) -> bool:
        """Whether a graph's declared tensor (symbolic dims as str/None) fits this spec."""
        if np.dtype(dtype) != np.dtype(self.dtype) or len(shape) != len(self.shape):
            return False
        return all(want == -1 or got == want for want, got in zip(self.shape, shape))


@dataclass(frozen=True)
class GraphSpec:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def identity_feature_specs(cfg: ModelConfig) -> tuple[TensorSpec, ...]:
    f32 = np.dtype(np.float32)
    a, b, c = cfg.identity.channels[0], cfg.identity.channels[0], cfg.identity.channels[1]
    specs: tuple[TensorSpec, ...] = (
        TensorSpec(ID_EMBEDDING, (-1, cfg.identity.embedding), f32),
        TensorSpec(SKIP_A, (-1, a, SKIP_A_SIZE, SKIP_A_SIZE), f32),
        TensorSpec(SKIP_B, (-1, b, SKIP_B_SIZE, SKIP_B_SIZE), f32),
        TensorSpec(SKIP_C, (-1, c, SKIP_C_SIZE, SKIP_C_SIZE), f32),
    )
    if cfg.decoder.head == "warp":
        specs += (TensorSpec(REFERENCE, (-1, 3, OUTPUT_SIZE, OUTPUT_SIZE), f32),)
    return specs


def graph_specs(cfg: ModelConfig) -> dict[str, GraphSpec]:
    """Both graphs' specs for a model geometry, keyed by graph name."""
    f32 = np.dtype(np.float32)
    ident = identity_feature_specs(cfg)
    faces = TensorSpec(FACES, (-1, 3 * cfg.identity_faces, FACE_SIZE, FACE_SIZE), f32)
    mfcc = TensorSpec(MFCC, (-1, 1, N_CEPS, WINDOW_COLS), f32)
    outputs: tuple[TensorSpec, ...] = (TensorSpec(FRAME, (-1, 3, OUTPUT_SIZE, OUTPUT_SIZE), f32),)
    if cfg.decoder.head == "warp":
        outputs += (TensorSpec(MOTION, (-1, MOTION_CHANNELS, OUTPUT_SIZE, OUTPUT_SIZE), f32),)
    return {
        IDENTITY_GRAPH: GraphSpec(IDENTITY_GRAPH, (faces,), ident),
        FRAME_GRAPH: GraphSpec(FRAME_GRAPH, (mfcc, *ident), outputs),
    }
