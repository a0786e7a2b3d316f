"""Speech2Vid assembled, and split into the two graphs that engines run.

``Speech2Vid`` owns the parameters (its state dict is what weight files hold). ``IdentityGraph`` and
``FrameGraph`` are views over the same modules with the inputs/outputs of ``io_spec``: the identity
graph runs once per identity, the frame graph once per video frame (audio encoder + decoder + deblur).
"""

from __future__ import annotations

import torch
from torch import nn

from speech2vid.config import ModelConfig
from speech2vid.model.deblur import Deblur
from speech2vid.model.decoder import Decoder
from speech2vid.model.encoders import AudioEncoder, IdentityEncoder
from speech2vid.model.io_spec import CROP_OFFSET, OUTPUT_SIZE

# (embedding, skip A, skip B, skip C), and for the warp head the reference face (io_spec.REFERENCE).
IdentityFeatures = tuple[torch.Tensor, ...]


def reference_face(faces: torch.Tensor) -> torch.Tensor:
    """The first identity face's central 109x109 crop in [0, 1]: what the warp head moves."""
    o = CROP_OFFSET
    return faces[:, 0:3, o : o + OUTPUT_SIZE, o : o + OUTPUT_SIZE] / 255.0


class Speech2Vid(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.audio = AudioEncoder(cfg.audio)
        self.identity = IdentityEncoder(cfg.identity, cfg.identity_faces)
        skips = (cfg.identity.channels[0], cfg.identity.channels[0], cfg.identity.channels[1])
        self.decoder = Decoder(cfg.decoder, cfg.audio.embedding, cfg.identity.embedding, skips)
        self.deblur = Deblur(cfg.deblur)

    def encode_identity(self, faces: torch.Tensor) -> IdentityFeatures:
        """(N, 3K, 112, 112) raw 0-255 -> (embedding, skip A, skip B, skip C[, reference])."""
        return encode_identity(self.identity, self.cfg.decoder.head == "warp", faces)

    def generate(self, mfcc: torch.Tensor, identity: IdentityFeatures) -> torch.Tensor:
        """The generator alone (trained with L1 before the deblur): (N, 3, 109, 109) in [0, 1]."""
        frame: torch.Tensor = self.decoder(self.audio(mfcc), *identity)
        return frame

    def forward(self, mfcc: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        frame: torch.Tensor = self.deblur(self.generate(mfcc, self.encode_identity(faces)))
        return frame

    def identity_graph(self) -> "IdentityGraph":
        return IdentityGraph(self)

    def frame_graph(self) -> "FrameGraph":
        return FrameGraph(self)


class IdentityGraph(nn.Module):
    """faces -> (id_embedding, skip_a, skip_b, skip_c)."""

    def __init__(self, model: Speech2Vid):
        super().__init__()
        self.identity = model.identity
        self.warp = model.cfg.decoder.head == "warp"

    def forward(self, faces: torch.Tensor) -> IdentityFeatures:
        return encode_identity(self.identity, self.warp, faces)


class FrameGraph(nn.Module):
    """(mfcc, id_embedding, skip_a, skip_b, skip_c[, reference]) -> frame[, motion] (``io_spec.graph_specs``);
    identity tensors of batch 1 broadcast."""

    def __init__(self, model: Speech2Vid):
        super().__init__()
        self.audio, self.decoder, self.deblur = model.audio, model.decoder, model.deblur
        self.motion = model.cfg.decoder.head == "warp"

    def forward(
        self,
        mfcc: torch.Tensor,
        id_embedding: torch.Tensor,
        skip_a: torch.Tensor,
        skip_b: torch.Tensor,
        skip_c: torch.Tensor,
        reference: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        out = self.decoder(self.audio(mfcc), id_embedding, skip_a, skip_b, skip_c, reference, with_motion=self.motion)
        if isinstance(out, tuple):  # the warp head: no deblur to run (its layers are 0), the motion beside
            return self.deblur(out[0]), out[1]
        frame: torch.Tensor = self.deblur(out)
        return frame


def encode_identity(identity: IdentityEncoder, warp: bool, faces: torch.Tensor) -> IdentityFeatures:
    features = identity(faces)
    return (*features, reference_face(faces)) if warp else features


def build_model(cfg: ModelConfig) -> Speech2Vid:
    return Speech2Vid(cfg)
