"""The evaluation's own networks, trained on the dataset's train split (ground-truth faces only).

* ``MouthReader`` regresses the known jaw opening (``mouth_open``, the synthetic corpus' ground truth)
  from the mouth region of a 109x109 face; applied to generated faces it says how open their mouths are.
* ``SyncNet`` (after Chung & Zisserman 2016, "Out of time"): an audio branch on the 12x35 MFCC window and
  a visual branch on the mouth region, trained self-supervised with a contrastive loss (the true pair
  against the other pairs of the batch), so that the distance between the two embeddings is small when
  sound and mouth belong together. LSE-D / LSE-C are computed from these distances.

Both are small and trained once per dataset and settings; they are cached as safetensors.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from speech2vid.config import EvalConfig, to_dict
from speech2vid.files import atomic_path, user_path
from speech2vid.training.datasets import ShardedSamples, open_dataset

log = logging.getLogger("speech2vid.eval")
VERSION = "1"
MOUTH_ROWS, MOUTH_COLS = slice(56, 108), slice(22, 86)  # lower face of the 109x109 registered face: 52x64
EMBEDDING = 64


def mouth_region(faces: torch.Tensor) -> torch.Tensor:
    """(N, 3, 109, 109) in [0, 1] -> the centred mouth region, zero-mean."""
    return faces[:, :, MOUTH_ROWS, MOUTH_COLS] - 0.5


def _trunk(cin: int, widths: tuple[int, ...], strides: tuple[tuple[int, int], ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w, s in zip(widths, strides):
        layers += [nn.Conv2d(cin, w, 3, stride=s, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class MouthReader(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.trunk = _trunk(3, (16, 32, 64, 64), ((2, 2),) * 4)
        self.head = nn.Linear(64, 1)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.trunk(mouth_region(faces)))
        return logits[:, 0]


class SyncNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.video = nn.Sequential(_trunk(3, (16, 32, 64, 64), ((2, 2),) * 4), nn.Linear(64, EMBEDDING))
        self.audio = nn.Sequential(_trunk(1, (32, 64, 64), ((1, 1), (1, 2), (2, 2))), nn.Linear(64, EMBEDDING))

    def embed_video(self, faces: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.video(mouth_region(faces)), dim=1)

    def embed_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio(mfcc / 10.0), dim=1)


def _forever(root: str | Path, seed: int, batch: int) -> Iterator[dict[str, torch.Tensor]]:
    epoch = 0
    ds = ShardedSamples(root, "train", identity_faces=1, shuffle=True, seed=seed, rank=0, world_size=1)
    while True:
        ds.set_epoch(epoch)
        got = False
        for b in DataLoader(ds, batch_size=batch, num_workers=0, drop_last=True):
            got = True
            yield b
        if not got:
            raise ValueError(f"the train split of {root} has fewer than {batch} samples: lower eval.batch")
        epoch += 1


def _cache_key(root: str | Path, cfg: EvalConfig, what: str) -> str:
    index = (Path(root) / "index.json").read_bytes()
    settings = json.dumps({k: v for k, v in to_dict(cfg).items() if k != "cache_dir"}, sort_keys=True)
    return hashlib.sha256(index + settings.encode() + f"{what}:{VERSION}".encode()).hexdigest()[:24]


def train_reader(root: str | Path, cfg: EvalConfig, progress: bool) -> MouthReader:
    torch.manual_seed(cfg.seed)
    net = MouthReader()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    data = _forever(root, cfg.seed, cfg.batch)
    net.train()
    for _ in tqdm(range(cfg.reader_steps), desc="mouth reader", disable=not progress, unit="step"):
        b = next(data)
        target = b["mouth_open"].float()
        ok = torch.isfinite(target)
        if not ok.any():
            raise ValueError(
                "the dataset has no ground-truth mouth opening (real videos): mouth agreement needs the synthetic "
                "corpus"
            )
        faces = b["target"].float() / 255.0
        loss = F.mse_loss(net(faces[ok]), target[ok])
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated
        opt.step()
    return net.eval()


def train_sync(root: str | Path, cfg: EvalConfig, progress: bool, temperature: float = 0.1) -> SyncNet:
    torch.manual_seed(cfg.seed + 1)
    net = SyncNet()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    data = _forever(root, cfg.seed + 1, cfg.batch)
    net.train()
    for _ in tqdm(range(cfg.sync_steps), desc="sync network", disable=not progress, unit="step"):
        b = next(data)
        v = net.embed_video(b["target"].float() / 255.0)
        a = net.embed_audio(b["mfcc"].float())
        logits = v @ a.T / temperature
        labels = torch.arange(len(v))
        loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated
        opt.step()
    return net.eval()


def helpers(
    root: str | Path, cfg: EvalConfig, *, cache_dir: str | Path | None = None, progress: bool = False
) -> tuple[MouthReader | None, SyncNet]:
    """The trained mouth reader (None for data without ground-truth mouth opening) and sync network."""
    open_dataset(root)  # a clear error for a folder that is not a dataset
    folder = user_path(cache_dir or cfg.cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    out: list[nn.Module | None] = []
    for what, make in (
        ("reader", lambda: train_reader(root, cfg, progress)),
        ("sync", lambda: train_sync(root, cfg, progress)),
    ):
        path = folder / f"{what}-{_cache_key(root, cfg, what)}.safetensors"
        net: nn.Module | None = MouthReader() if what == "reader" else SyncNet()
        if path.is_file():
            assert net is not None
            net.load_state_dict(load_file(str(path)))
            net.eval()
            log.info("%s network from the cache: %s", what, path)
        else:
            try:
                net = make()
            except ValueError as exc:
                if what != "reader":
                    raise
                log.warning("no mouth agreement: %s", exc)
                net = None
            if net is not None:
                with atomic_path(path, ".safetensors") as tmp:
                    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp))
        out.append(net)
    reader, sync = out
    assert (reader is None or isinstance(reader, MouthReader)) and isinstance(sync, SyncNet)
    return reader, sync
