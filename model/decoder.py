"""The image decoder (MODEL.md table "Decoder"): joint code -> 109x109 RGB face in [0, 1].

"U" is a parameter-free bilinear x2 upsample with align_corners=True, as in the released model.
No BatchNorm; ReLU after every conv but the last, which ends in a sigmoid.

Two output heads share the trunk (conv8 .. conv4 + skip A, 53x53):

* ``pixels`` (the paper): conv5_1..conv5_3 draw the 109x109 face;
* ``warp`` (lite): ``warp1..warp3`` predict a motion field, a mask and a colour layer at 109x109; the
  frame is the reference face (the first identity face) resampled along the motion field, with the
  colour layer laid over it where the mask says (the mouth interior: teeth, cavity). Pixels are moved,
  not redrawn, so a real photo stays sharp and keeps its identity (docs/warp_head.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from speech2vid.config import DecoderConfig
from speech2vid.model.io_spec import OUTPUT_SIZE

# (left, right, top, bottom): the released model pads these convs more on the top-left so that each
# x2 upsample followed by a 3x3 conv grows the map by one pixel (52 -> 53, 106 -> 107 -> 108 -> 109).
GROW_PAD = (2, 1, 2, 1)


def up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)


def broadcast(skip: torch.Tensor, batch: int) -> torch.Tensor:
    """Identity tensors cached once (batch 1) serve a whole batch of audio windows."""
    return skip.expand(batch, -1, -1, -1)


# The warp head's motion field is predicted in units of this many normalised coordinates (2 / 108 per
# pixel): a raw output of 1 moves a pixel by ~5.4 px, so small initial weights start near no motion.
FLOW_SCALE = 0.1
MASK_BIAS = -4.0  # the colour layer starts hidden (sigmoid(-4) = 0.018): the output starts as the reference
WARP_OUT = 6  # flow x, flow y, mask, colour R, G, B


def identity_grid(size: int) -> torch.Tensor:
    """(1, size, size, 2) sampling grid of grid_sample(align_corners=True) that returns the input unchanged."""
    ys, xs = torch.meshgrid(torch.linspace(-1.0, 1.0, size), torch.linspace(-1.0, 1.0, size), indexing="ij")
    return torch.stack([xs, ys], dim=-1)[None]


class Decoder(nn.Module):
    grid: torch.Tensor  # the warp head's buffer (register_buffer below)

    def __init__(
        self, cfg: DecoderConfig, audio_embedding: int, id_embedding: int, skip_channels: tuple[int, int, int]
    ):
        super().__init__()
        self.head = cfg.head
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
        if cfg.head == "pixels":
            self.conv5_1 = nn.Conv2d(cfg.conv4 + ca, c51, 3)  # 106 -> 107
            self.conv5_2 = nn.Conv2d(c51, c52, 3)  # 108
            self.conv5_3 = nn.Conv2d(c52, 3, 3)  # 109
        else:
            self.warp1 = nn.Conv2d(cfg.conv4 + ca, c51, 3, padding=1)  # 53x53
            self.warp2 = nn.Conv2d(c51, c52, 3, padding=1)  # 109x109 (bilinear from 53)
            self.warp3 = nn.Conv2d(c52, WARP_OUT, 3, padding=1)
            nn.init.normal_(self.warp3.weight, std=1e-3)
            bias = self.warp3.bias
            assert bias is not None  # nn.Conv2d's default bias=True
            with torch.no_grad():
                bias.zero_()
                bias[2] = MASK_BIAS
            self.register_buffer("grid", identity_grid(OUTPUT_SIZE), persistent=False)

    def forward(
        self,
        audio: torch.Tensor,
        id_embedding: torch.Tensor,
        skip_a: torch.Tensor,
        skip_b: torch.Tensor,
        skip_c: torch.Tensor,
        reference: torch.Tensor | None = None,
        with_motion: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The frame (N, 3, 109, 109) in [0, 1]; with ``with_motion`` (warp head), also the motion that
        made it (``io_spec.MOTION``: flow x, y in face pixels, mask, colour RGB; N x 6 x 109 x 109)."""
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
        if self.head == "warp":
            if reference is None:
                raise ValueError("the warp head needs the reference face")
            frame, motion = self._warp(x, broadcast(reference, n))
            return (frame, motion) if with_motion else frame
        x = F.relu(self.conv5_1(F.pad(up(x), GROW_PAD)))
        x = F.relu(self.conv5_2(F.pad(x, GROW_PAD)))
        return torch.sigmoid(self.conv5_3(F.pad(x, GROW_PAD)))

    def _warp(self, x: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.warp1(x))
        h = F.interpolate(h, size=(OUTPUT_SIZE, OUTPUT_SIZE), mode="bilinear", align_corners=True)
        o = self.warp3(F.relu(self.warp2(h)))
        flow = (o[:, 0:2] * FLOW_SCALE).permute(0, 2, 3, 1)
        mask = torch.sigmoid(o[:, 2:3])
        colour = torch.sigmoid(o[:, 3:6])
        if self.training:  # what the motion-field and mask losses compare with their ground truth
            self.last_motion = (o[:, 0:2] * FLOW_SCALE, o[:, 2:3])
        moved = F.grid_sample(reference, self.grid + flow, mode="bilinear", padding_mode="border", align_corners=True)
        # The motion in face pixels (align_corners: the normalised span of 2 is OUTPUT_SIZE - 1 pixels), for
        # a composite that moves the photo's own full-resolution pixels instead (frames/photo_canvas.py).
        flow_px = o[:, 0:2] * (FLOW_SCALE * (OUTPUT_SIZE - 1) / 2.0)
        return moved * (1.0 - mask) + colour * mask, torch.cat([flow_px, mask, colour], dim=1)
