"""The two VGG-M-like encoders of Speech2Vid (MODEL.md tables "Audio encoder" and "Identity encoder").

Every convolution, fc6 and fc7 included, is followed by BatchNorm and ReLU, as in the released model.
The asymmetric max-pool paddings of the released model are zero paddings here: they are applied after
a ReLU, where every value is >= 0, so a zero pad gives exactly the max-pool result of a -inf pad and
exports to ONNX/TensorRT as a plain Pad.
"""

from __future__ import annotations

import torch
from torch import nn

from speech2vid.config import EncoderConfig


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)


class AudioEncoder(nn.Module):
    """MFCC window (N, 1, 12, 35) -> audio embedding (N, E)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        c1, c2, c3, c4, c5 = cfg.channels
        self.conv1 = ConvBNReLU(1, c1, 3, padding=1)  # 12x35
        self.conv2 = ConvBNReLU(c1, c2, 3, padding=1)  # 12x35
        self.pad2 = nn.ZeroPad2d((0, 0, 1, 0))  # top 1
        self.pool2 = nn.MaxPool2d(3, stride=(1, 2))  # 11x17
        self.conv3 = ConvBNReLU(c2, c3, 3, padding=1)
        self.conv4 = ConvBNReLU(c3, c4, 3, padding=1)
        self.conv5 = ConvBNReLU(c4, c5, 3, padding=1)  # 11x17
        self.pool5 = nn.MaxPool2d(3, stride=2)  # 5x8
        self.fc6 = ConvBNReLU(c5, cfg.fc6, (5, 8))  # 1x1
        self.fc7 = ConvBNReLU(cfg.fc6, cfg.embedding, 1)

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        x: torch.Tensor = self.conv2(self.conv1(mfcc))
        x = self.pool2(self.pad2(x))
        x = self.conv5(self.conv4(self.conv3(x)))
        x = self.fc7(self.fc6(self.pool5(x)))
        return x.flatten(1)


class IdentityEncoder(nn.Module):
    """Stacked faces (N, 3K, 112, 112), raw 0-255 -> (embedding (N, E), skip A, skip B, skip C)."""

    def __init__(self, cfg: EncoderConfig, faces: int):
        super().__init__()
        c1, c2, c3, c4, c5 = cfg.channels
        self.conv1 = ConvBNReLU(3 * faces, c1, 7, stride=2)  # 53x53 -> skip A
        self.pool1 = nn.MaxPool2d(3, stride=2)  # 26x26 -> skip B
        self.conv2 = ConvBNReLU(c1, c2, 5, stride=2, padding=1)  # 12x12 -> skip C
        self.pad2 = nn.ZeroPad2d((0, 1, 0, 1))  # right 1, bottom 1
        self.pool2 = nn.MaxPool2d(3, stride=2)  # 6x6
        self.conv3 = ConvBNReLU(c2, c3, 3, padding=1)
        self.conv4 = ConvBNReLU(c3, c4, 3, padding=1)
        self.conv5 = ConvBNReLU(c4, c5, 3, padding=1)
        self.fc6 = ConvBNReLU(c5, cfg.fc6, 6)  # 1x1
        self.fc7 = ConvBNReLU(cfg.fc6, cfg.embedding, 1)

    def forward(self, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        skip_a = self.conv1(faces)
        skip_b = self.pool1(skip_a)
        skip_c = self.conv2(skip_b)
        x = self.pool2(self.pad2(skip_c))
        x = self.conv5(self.conv4(self.conv3(x)))
        x = self.fc7(self.fc6(x))
        return x.flatten(1), skip_a, skip_b, skip_c
