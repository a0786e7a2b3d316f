"""The image decoder (MODEL.md table "Decoder"): joint code -> 109x109 RGB face in [0, 1].

"U" is a parameter-free bilinear x2 upsample with align_corners=True, as in the released model.
No BatchNorm; ReLU after every conv but the last, which ends in a sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from speech2vid.config import DecoderConfig

# (left, right, top, bottom): the released model pads these convs more on the top-left so that each
# x2 upsample followed by a 3x3 conv grows the map by one pixel (52 -> 53, 106 -> 107 -> 108 -> 109).
GROW_PAD = (2, 1, 2, 1)


def up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)


def broadcast(skip: torch.Tensor, batch: int) -> torch.Tensor:
    """Identity tensors cached once (batch 1) serve a whole batch of audio windows."""
    return skip.expand(batch, -1, -1, -1)


class Decoder(nn.Module):
    def __init__(self, cfg: DecoderConfig, audio_embedding: int, id_embedding: int, skip_channels: tuple[int, int, int]):
        super().__init__()
        ca, cb, cc = skip_channels
        c11, c12, c13 = cfg.conv1
        c31, c32 = cfg.conv3
        c51, c52 = cfg.conv5
        self.conv8 = nn.Conv2d(audio_embedding + id_embedding, cfg.conv8, 1)  # 1x1
        self.conv1_1 = nn.Conv2d(cfg.conv8, c11, 3, padding=1)  # 2x2
        self.conv1_2 = nn.Conv2d(c11, c12, 3, padding=1)  # 4x4
        self.conv1_3 = nn.Conv2d(c12, c13, 3)  # 8x8 -> 6x6
        self.conv2 = nn.Conv2d(c13, cfg.conv2, 3, padding=1)  # 12x12, then concat skip C
        self.conv3_1 = nn.Conv2d(cfg.conv2 + cc, c31, 3, padding=1)  # 24x24
        self.conv3_2 = nn.Conv2d(c31, c32, 5, padding=3)  # 26x26, then concat skip B
        self.conv4 = nn.Conv2d(c32 + cb, cfg.conv4, 3)  # 52 -> pad -> 53, then concat skip A
        self.conv5_1 = nn.Conv2d(cfg.conv4 + ca, c51, 3)  # 106 -> 107
        self.conv5_2 = nn.Conv2d(c51, c52, 3)  # 108
        self.conv5_3 = nn.Conv2d(c52, 3, 3)  # 109

    def forward(
        self,
        audio: torch.Tensor,
        id_embedding: torch.Tensor,
        skip_a: torch.Tensor,
        skip_b: torch.Tensor,
        skip_c: torch.Tensor,
    ) -> torch.Tensor:
        n = audio.shape[0]
        code = torch.cat([audio, id_embedding.expand(n, -1)], dim=1)[:, :, None, None]  # (N, 512, 1, 1)
        x = F.relu(self.conv8(code))
        x = F.relu(self.conv1_1(up(x)))
        x = F.relu(self.conv1_2(up(x)))
        x = F.relu(self.conv1_3(up(x)))
        x = F.relu(self.conv2(up(x)))
        x = torch.cat([x, broadcast(skip_c, n)], dim=1)
        x = F.relu(self.conv3_1(up(x)))
        x = F.relu(self.conv3_2(x))
        x = torch.cat([x, broadcast(skip_b, n)], dim=1)
        x = F.relu(self.conv4(F.pad(up(x), GROW_PAD)))
        x = torch.cat([x, broadcast(skip_a, n)], dim=1)
        x = F.relu(self.conv5_1(F.pad(up(x), GROW_PAD)))
        x = F.relu(self.conv5_2(F.pad(x, GROW_PAD)))
        return torch.sigmoid(self.conv5_3(F.pad(x, GROW_PAD)))
