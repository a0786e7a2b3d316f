"""`speech2vid import-matconvnet`: DagNN .mat files written here in MatConvNet's saved layout.

The writer below mirrors what ``dagnn.DagNN.saveobj`` stores (a ``net`` struct with ``vars``, ``params``
and ``layers`` struct arrays; each layer with name, type, inputs/outputs/params cell arrays and a
``block`` struct of its properties) for the released generator (inputs ``input_audio``/``input_face``,
output ``prediction``, loss layers on top) and deblurrer (input ``input_lip``, a ``loss`` layer).
Filters are stored HxWxCinxCout, BatchNorm moments as [mean, sigma]; upsampling layers carry no params.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from speech2vid.cli import main
from speech2vid.config import load_model_config
from speech2vid.errors import WeightsError
from speech2vid.model.decoder import GROW_PAD
from speech2vid.model.matconvnet import DECODER, ENCODER, GROWN, import_matconvnet
from speech2vid.model.speech2vid import Speech2Vid, build_model
from speech2vid.model.weights import load_weights

SMALL = str(Path(__file__).parent / "models" / "small_pixels.yaml")  # the paper's layers, narrower
MCN_EPS = 1e-4  # dagnn.BatchNorm's default epsilon (only used by MatConvNet when training)


def random_model(name: str, seed: int) -> Speech2Vid:
    torch.manual_seed(seed)
    model = build_model(load_model_config(name))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics so that the moments matter
            m.running_mean.normal_(0.0, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0.0, 0.2)
    return model.eval()


class DagWriter:
    """Builds the struct arrays of a saved DagNN."""

    def __init__(self) -> None:
        self.layers: list[tuple] = []
        self.params: list[tuple[str, np.ndarray]] = []

    def layer(
        self, name: str, type_: str, inputs: list[str], outputs: list[str], params: dict[str, np.ndarray], block: dict
    ) -> None:
        for pname, value in params.items():
            self.params.append((pname, value.astype(np.float32)))
        self.layers.append((name, type_, cell(inputs), cell(outputs), cell(list(params)), block))

    def conv(
        self,
        name: str,
        x: str,
        y: str,
        conv: torch.nn.Conv2d,
        pad: tuple[int, int, int, int] | None = None,
        bias: torch.Tensor | None = None,
    ) -> None:
        w = conv.weight.detach().permute(2, 3, 1, 0).numpy()  # OIHW -> HxWxCinxCout
        b = conv.bias if conv.bias is not None else bias
        params = {f"{name}f": w}
        if b is not None:
            params[f"{name}b"] = b.detach().numpy().reshape(-1, 1)
        ph, pw = conv.padding
        self.layer(
            name,
            "dagnn.Conv",
            [x],
            [y],
            params,
            {
                "size": np.array(w.shape, dtype=float),
                "hasBias": b is not None,
                "opts": np.zeros((1, 0), dtype=object),
                "pad": np.array(pad or (ph, ph, pw, pw), dtype=float),
                "stride": np.array(conv.stride, dtype=float),
                "dilate": np.array([1.0, 1.0]),
            },
        )

    def bnorm(self, name: str, x: str, y: str, bn: torch.nn.BatchNorm2d, shift: torch.Tensor | None = None) -> None:
        sigma = torch.sqrt(bn.running_var.double() + bn.eps)  # MatConvNet moments: [mean, sigma]
        mean = bn.running_mean.double() + (shift.double() if shift is not None else 0.0)
        moments = torch.stack([mean, sigma], dim=1).numpy()
        self.layer(
            name,
            "dagnn.BatchNorm",
            [x],
            [y],
            {
                f"{name}_m": bn.weight.detach().numpy().reshape(-1, 1),
                f"{name}_b": bn.bias.detach().numpy().reshape(-1, 1),
                f"{name}_x": moments,
            },
            {"numChannels": float(bn.num_features), "epsilon": MCN_EPS},
        )

    def simple(self, name: str, type_: str, inputs: list[str], y: str, **block: object) -> None:
        self.layer(name, type_, inputs, [y], {}, dict(block))

    def save(self, path: Path) -> Path:
        layers = np.zeros(
            (1, len(self.layers)), dtype=[(k, object) for k in ("name", "type", "inputs", "outputs", "params", "block")]
        )
        for i, row in enumerate(self.layers):
            layers[0, i] = row
        params = np.zeros(
            (1, len(self.params)), dtype=[(k, object) for k in ("name", "value", "learningRate", "weightDecay")]
        )
        for i, (n, v) in enumerate(self.params):
            params[0, i] = (n, v, 1.0, 1.0)
        names = sorted({v for row in self.layers for v in list(row[2].ravel()) + list(row[3].ravel())})
        variables = np.zeros((1, len(names)), dtype=[("name", object), ("precious", object)])
        for i, n in enumerate(names):
            variables[0, i] = (n, False)
        net = {
            "vars": variables,
            "params": params,
            "layers": layers,
            "meta": {"normalization": {"imageSize": [112.0, 112.0]}},
        }
        scipy.io.savemat(str(path), {"net": net})
        return path


def cell(items: list[str]) -> np.ndarray:
    out = np.empty((1, len(items)), dtype=object)
    for i, s in enumerate(items):
        out[0, i] = s
    return out


def write_generator(model: Speech2Vid, path: Path, *, conv_bias: bool = False) -> Path:
    """The generator as the released v201 is laid out; ``conv_bias`` gives encoder convs a bias before BN."""
    w = DagWriter()
    gen = torch.Generator().manual_seed(1)
    for branch, x, suffix in (("audio", "input_audio", "a"), ("identity", "input_face", "f")):
        enc = getattr(model, branch)
        for n in ENCODER:
            block = getattr(enc, n)
            name = f"{n}_{suffix}"
            bias = torch.randn(block.conv.out_channels, generator=gen) if conv_bias else None
            w.conv(name, x, f"{name}x", block.conv, bias=bias)
            w.bnorm(f"{name}_bn", f"{name}x", f"{name}_bnx", block.bn, shift=bias)
            w.simple(f"{name}_relu", "dagnn.ReLU", [f"{name}_bnx"], f"{name}_r", leak=0.0)
            x = f"{name}_r"
            if (branch, n) == ("audio", "conv2"):
                w.simple(
                    "pool2_a",
                    "dagnn.Pooling",
                    [x],
                    "pool2_a",
                    method="max",
                    poolSize=[3.0, 3.0],
                    pad=[1.0, 0.0, 0.0, 0.0],
                    stride=[1.0, 2.0],
                )
                x = "pool2_a"
            if (branch, n) == ("audio", "conv5"):
                w.simple(
                    "pool5_a", "dagnn.Pooling", [x], "pool5_a", method="max", poolSize=[3.0, 3.0], stride=[2.0, 2.0]
                )
                x = "pool5_a"
            if branch == "identity" and n in ("conv1", "conv2"):
                pool = f"pool{n[-1]}_f"
                w.simple(
                    pool,
                    "dagnn.Pooling",
                    [x],
                    pool,
                    method="max",
                    poolSize=[3.0, 3.0],
                    stride=[2.0, 2.0],
                    pad=[0.0, 0.0, 0.0, 0.0] if n == "conv1" else [0.0, 1.0, 0.0, 1.0],
                )
                x = pool
        if branch == "audio":
            audio_out = x
    w.simple("concat_code", "dagnn.Concat", [audio_out, x], "code", dim=3.0)
    x = "code"
    skips = {"conv2": "conv2_f_r", "conv3_2": "pool1_f", "conv4": "conv1_f_r"}  # C, B, A
    left, right, top, bottom = GROW_PAD
    for n in DECODER:
        if n != "conv8" and n not in ("conv3_2", "conv5_2", "conv5_3"):
            w.simple(f"up_{n}", "dagnn.BilinearUpsample", [x], f"up_{n}x", scale=2.0, alignCorners=True)
            x = f"up_{n}x"
        w.conv(n, x, f"{n}x", getattr(model.decoder, n), pad=(top, bottom, left, right) if n in GROWN else None)
        x = f"{n}x"
        if n == "conv5_3":
            w.simple("sigmoid", "dagnn.Sigmoid", [x], "prediction")
            continue
        w.simple(f"{n}_relu", "dagnn.ReLU", [x], f"{n}_r", leak=0.0)
        x = f"{n}_r"
        if n in skips:
            w.simple(f"cat_{n}", "dagnn.Concat", [x, skips[n]], f"cat_{n}x", dim=3.0)
            x = f"cat_{n}x"
    for loss in ("loss1", "loss_SR"):  # training-only layers on the output (and a label input)
        w.simple(loss, "dagnn.Loss", ["prediction", "label"], f"{loss}_objective", loss="l1")
    return w.save(path)


def write_deblur(model: Speech2Vid, path: Path) -> Path:
    w = DagWriter()
    x = "input_lip"
    convs = list(model.deblur.convs)
    for i, conv in enumerate(convs):
        w.conv(f"conv{i + 1}", x, f"conv{i + 1}x", conv)
        x = f"conv{i + 1}x"
        if i < len(convs) - 1:
            w.simple(f"relu{i + 1}", "dagnn.ReLU", [x], f"relu{i + 1}x", leak=0.0)
            x = f"relu{i + 1}x"
    w.simple("loss", "dagnn.Loss", [x, "label"], "objective", loss="l2")
    return w.save(path)


def inputs(faces: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, 1, 12, 35, generator=gen) * 10.0, torch.rand(2, 3 * faces, 112, 112, generator=gen) * 255.0


@pytest.mark.parametrize("name", [SMALL, "paper"], ids=["small", "paper"])
def test_round_trip_gives_identical_tensors_and_output(name: str, tmp_path: Path) -> None:
    src = random_model(name, seed=3)
    gen_mat = write_generator(src, tmp_path / "v201.mat")
    deb_mat = write_deblur(src, tmp_path / "v114.mat")
    dst, results = import_matconvnet([deb_mat, gen_mat], build_model(load_model_config(name)))  # any order
    assert sorted(r.kind for r in results) == ["deblur", "generator"]
    want, got = src.state_dict(), dst.state_dict()
    assert set(want) == set(got)
    for k, v in want.items():
        if k.endswith("running_var"):  # through sigma = sqrt(var + eps) and back: float rounding only
            torch.testing.assert_close(got[k], v, rtol=1e-5, atol=1e-6)
        elif k.endswith("num_batches_tracked"):
            continue
        else:
            assert torch.equal(got[k], v), k
    mfcc, faces = inputs(src.cfg.identity_faces)
    with torch.inference_mode():
        torch.testing.assert_close(dst(mfcc, faces), src(mfcc, faces), rtol=0, atol=1e-5)


def test_conv_bias_before_batchnorm_folds_into_the_mean(tmp_path: Path) -> None:
    src = random_model(SMALL, seed=4)
    dst, _ = import_matconvnet(
        [write_generator(src, tmp_path / "g.mat", conv_bias=True)], build_model(load_model_config(SMALL))
    )
    mfcc, faces = inputs(5)
    with torch.inference_mode():
        want = src.generate(mfcc, src.encode_identity(faces))
        torch.testing.assert_close(dst.generate(mfcc, dst.encode_identity(faces)), want, rtol=0, atol=1e-5)


def test_layout_matches_matconvnet_semantics_independently(tmp_path: Path) -> None:
    """vl_nnconv / vl_nnbnorm written out in NumPy on the file's own arrays (not via our writer's inverse)."""
    src = random_model(SMALL, seed=5)
    path = write_generator(src, tmp_path / "g.mat")
    dst, _ = import_matconvnet([path], build_model(load_model_config(SMALL)))
    raw = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)["net"]
    p = {q.name: np.asarray(q.value, dtype=np.float64) for q in raw.params}
    f, g, b, mom = p["conv1_af"].reshape(3, 3, 1, -1), p["conv1_a_bn_m"], p["conv1_a_bn_b"], p["conv1_a_bn_x"]
    x = np.random.default_rng(0).normal(size=(12, 35, 1)) * 10  # H x W x C, MATLAB's image layout
    xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    kh, kw, _, cout = f.shape
    y = np.zeros((12, 35, cout))
    for i in range(12):  # y(i,j,d'') = sum_{i',j',d} f(i',j',d,d'') x(i+i', j+j', d)
        for j in range(35):
            y[i, j] = np.einsum("uvc,uvco->o", xp[i : i + kh, j : j + kw], f)
    y = np.maximum(g * (y - mom[:, 0]) / mom[:, 1] + b, 0)  # vl_nnbnorm with given moments, then ReLU
    with torch.inference_mode():
        ours = dst.audio.conv1(torch.from_numpy(x.transpose(2, 0, 1)[None]).float())[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(ours, y, rtol=1e-4, atol=1e-3)


def test_generator_only_leaves_deblur_as_identity(tmp_path: Path) -> None:
    src = random_model(SMALL, seed=6)
    dst, _ = import_matconvnet([write_generator(src, tmp_path / "g.mat")], build_model(load_model_config(SMALL)))
    mfcc, faces = inputs(5)
    with torch.inference_mode():
        coarse = dst.generate(mfcc, dst.encode_identity(faces))
        assert torch.equal(dst(mfcc, faces), coarse)


def test_mismatching_file_is_refused_naming_the_first_mismatch(tmp_path: Path) -> None:
    lite_file = write_generator(random_model(SMALL, seed=7), tmp_path / "lite.mat")
    with pytest.raises(WeightsError) as err:
        import_matconvnet([lite_file], build_model(load_model_config("paper")))
    msg = str(err.value)
    assert "\n" not in msg
    assert "layer 'conv1_a'" in msg and "3x3x1x32" in msg and "expected 3x3x1x64" in msg


def test_cli_writes_loadable_weights_and_refuses_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = random_model(SMALL, seed=8)
    gen_mat, deb_mat = write_generator(src, tmp_path / "v201.mat"), write_deblur(src, tmp_path / "v114.mat")
    out = tmp_path / "w.safetensors"
    assert main(["import-matconvnet", str(gen_mat), str(deb_mat), "--model", SMALL, "-o", str(out)]) == 0
    model = build_model(load_model_config(SMALL))
    meta = load_weights(model, out)
    assert meta["source"] == "matconvnet"
    assert torch.equal(model.decoder.conv5_3.weight, src.decoder.conv5_3.weight)

    garbage = tmp_path / "garbage.mat"
    garbage.write_bytes(b"MATLAB 5.0 MAT-file, not really" + bytes(200))
    for args in ([str(garbage)], [str(gen_mat)]):  # unreadable; lite geometry into paper (the default)
        capsys.readouterr()
        assert main(["import-matconvnet", *args, "-o", str(tmp_path / "x.safetensors")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("speech2vid: error: ") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "x.safetensors").exists()


def test_a_warp_head_model_is_refused_in_one_line(tmp_path: Path) -> None:
    gen = write_generator(random_model(SMALL, seed=9), tmp_path / "v201.mat")
    with pytest.raises(WeightsError) as err:
        import_matconvnet([gen], build_model(load_model_config("lite")))  # the bundled lite: warp head
    assert "warp head" in str(err.value) and "--model paper" in str(err.value) and "\n" not in str(err.value)
