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

IdentityFeatures = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


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
        """(N, 3K, 112, 112) raw 0-255 -> (embedding, skip A, skip B, skip C)."""
        return self.identity(faces)

    def generate(self, mfcc: torch.Tensor, identity: IdentityFeatures) -> torch.Tensor:
        """The generator alone (trained with L1 before the deblur): (N, 3, 109, 109) in [0, 1]."""
        return self.decoder(self.audio(mfcc), *identity)

    def forward(self, mfcc: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        return self.deblur(self.generate(mfcc, self.encode_identity(faces)))

    def identity_graph(self) -> "IdentityGraph":
        return IdentityGraph(self)

    def frame_graph(self) -> "FrameGraph":
        return FrameGraph(self)


class IdentityGraph(nn.Module):
    """faces -> (id_embedding, skip_a, skip_b, skip_c)."""

    def __init__(self, model: Speech2Vid):
        super().__init__()
        self.identity = model.identity

    def forward(self, faces: torch.Tensor) -> IdentityFeatures:
        return self.identity(faces)


class FrameGraph(nn.Module):
    """(mfcc, id_embedding, skip_a, skip_b, skip_c) -> frame; identity tensors of batch 1 broadcast."""

    def __init__(self, model: Speech2Vid):
        super().__init__()
        self.audio, self.decoder, self.deblur = model.audio, model.decoder, model.deblur

    def forward(
        self,
        mfcc: torch.Tensor,
        id_embedding: torch.Tensor,
        skip_a: torch.Tensor,
        skip_b: torch.Tensor,
        skip_c: torch.Tensor,
    ) -> torch.Tensor:
        coarse = self.decoder(self.audio(mfcc), id_embedding, skip_a, skip_b, skip_c)
        return self.deblur(coarse)


def build_model(cfg: ModelConfig) -> Speech2Vid:
    return Speech2Vid(cfg)
