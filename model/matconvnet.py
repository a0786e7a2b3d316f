"""The authors' MatConvNet weights (generator ``v201.mat``, deblurrer ``v114.mat``) -> our state dict.

The files hold a ``dagnn.DagNN`` saved by ``saveobj``: a struct (usually under the variable ``net``)
with ``layers`` (a struct array: ``name``, ``type`` such as ``dagnn.Conv``, ``inputs``/``outputs``
cell arrays of variable names, ``params`` cell array of parameter names, ``block`` struct of the
layer's properties: ``size``, ``pad`` [top bottom left right], ``stride``, ``epsilon``, ...) and
``params`` (a struct array: ``name``, ``value``, ``learningRate``, ``weightDecay``).

Layers are matched by the data flow, not by their names (the released names are not documented):
the convolutions that depend on the audio input form the audio encoder, those on the face input the
identity encoder, those on both the decoder, each in topological order; the deblurrer has one input.
Every convolution must then have the filter shape, padding and stride of the module it fills, and
BatchNorm where our module has it; the first difference is refused in one line naming the layer.
Parameter-free layers (ReLU, pooling, the bilinear upsampling, concatenation, sigmoid, losses) carry
nothing to import. Layouts: filters HxWxCinxCout -> PyTorch OIHW (both are cross-correlations);
BatchNorm ``moments`` are [mean, sigma] with sigma = sqrt(var + epsilon) already, so the PyTorch
running variance is sigma^2 - eps(PyTorch); a conv bias in front of a BatchNorm folds into its mean.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from speech2vid.errors import WeightsError
from speech2vid.model.decoder import GROW_PAD
from speech2vid.model.speech2vid import Speech2Vid

GENERATOR, DEBLUR = "generator", "deblur"
CONV, BNORM = "dagnn.Conv", "dagnn.BatchNorm"
GROWN = ("conv4", "conv5_1", "conv5_2", "conv5_3")  # decoder convs that pad (top 2, bottom 1, left 2, right 1)
DECODER = (
    "conv8",
    "conv1_1",
    "conv1_2",
    "conv1_3",
    "conv2",
    "conv3_1",
    "conv3_2",
    "conv4",
    "conv5_1",
    "conv5_2",
    "conv5_3",
)
ENCODER = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")


# ----------------------------------------------------------------------------- what the model expects


@dataclass(frozen=True)
class ConvSlot:
    """One convolution of our model: where its tensors go and the geometry the file must have."""

    module: str  # state-dict prefix of the conv, e.g. "audio.conv1.conv"
    bn: str | None  # state-dict prefix of its BatchNorm, or None
    shape: tuple[int, int, int, int]  # MatConvNet filter shape H x W x Cin x Cout
    pad: tuple[int, int, int, int]  # top, bottom, left, right
    stride: tuple[int, int]

    def describe(self) -> str:
        return "x".join(map(str, self.shape))


def _slot(module: str, conv: nn.Conv2d, bn: str | None, pad: tuple[int, int, int, int] | None = None) -> ConvSlot:
    cout, cin, kh, kw = conv.weight.shape
    ph, pw = (int(v) for v in conv.padding)  # always a pair of ints here (no "same"/"valid" strings)
    sh, sw = conv.stride
    return ConvSlot(module, bn, (kh, kw, cin, cout), pad or (ph, ph, pw, pw), (sh, sw))


def expected_slots(model: Speech2Vid) -> dict[str, list[ConvSlot]]:
    """Branch ("audio", "identity", "decoder", "deblur") -> its convolutions in data-flow order."""
    out: dict[str, list[ConvSlot]] = {}
    for branch in ("audio", "identity"):
        enc = getattr(model, branch)
        out[branch] = [_slot(f"{branch}.{n}.conv", getattr(enc, n).conv, f"{branch}.{n}.bn") for n in ENCODER]
    left, right, top, bottom = GROW_PAD
    out["decoder"] = [
        _slot(f"decoder.{n}", getattr(model.decoder, n), None, (top, bottom, left, right) if n in GROWN else None)
        for n in DECODER
    ]
    # nn.ModuleList is not generic: its items are typed nn.Module, and Deblur fills it with nn.Conv2d only
    out["deblur"] = [_slot(f"deblur.convs.{i}", c, None) for i, c in enumerate(model.deblur.convs)]  # type: ignore[arg-type]
    return out


# ----------------------------------------------------------------------------- reading the .mat


@dataclass
class Layer:
    name: str
    type: str
    inputs: list[str]
    outputs: list[str]
    params: list[str]
    block: dict[str, Any] = field(default_factory=dict)


@dataclass
class DagNN:
    path: Path
    layers: list[Layer]
    params: dict[str, np.ndarray]


def _text(x: Any) -> str:
    if isinstance(x, str):
        return x
    arr = np.asarray(x)
    if arr.size == 0:
        return ""
    if arr.dtype.kind in "US":
        return str(arr.reshape(-1)[0])
    if arr.dtype == object and arr.size == 1:
        return _text(arr.reshape(-1)[0])
    raise ValueError(f"expected a string, got {arr.dtype} {arr.shape}")


def _texts(x: Any) -> list[str]:
    """A MATLAB cell array of strings (or one string) as a list."""
    if isinstance(x, str):
        return [x]
    arr = np.asarray(x)
    if arr.dtype.kind in "US":
        return [str(s) for s in arr.reshape(-1)]
    return [_text(v) for v in arr.reshape(-1, order="F") if np.asarray(v).size]


def _items(x: Any) -> list[Any]:
    """A MATLAB struct array (loaded with struct_as_record=False) as a list of mat_structs."""
    arr = np.asarray(x, dtype=object)
    return list(arr.reshape(-1, order="F"))


def _fields(s: Any) -> dict[str, Any]:
    names = getattr(s, "_fieldnames", None)
    if names is None:
        return {}
    return {n: getattr(s, n) for n in names}


def read_dagnn(path: str | Path) -> DagNN:
    """Parse a DagNN .mat (MATLAB v5/v7; the struct under ``net`` or at the top level)."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"MatConvNet file not found: {path}")
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=False, mat_dtype=False)
    except NotImplementedError:
        raise WeightsError(
            f"{path} is a MATLAB v7.3 (HDF5) file: re-save it in MATLAB with save(FILE, '-struct', S, '-v7')"
        ) from None
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError variants for damaged files
        raise WeightsError(f"{path} is not a readable MATLAB .mat file ({exc})".replace("\n", " ")) from None
    if "net" in mat:
        root = _fields(np.asarray(mat["net"], dtype=object).reshape(-1)[0])
    else:
        root = {k: v for k, v in mat.items() if not k.startswith("__")}
    if "layers" not in root or "params" not in root:
        raise WeightsError(f"{path} holds no MatConvNet DagNN (no 'net' struct with 'layers' and 'params')")
    try:
        layers = []
        for s in _items(root["layers"]):
            f = _fields(s)
            raw = np.asarray(f.get("block", []), dtype=object)
            block = _fields(raw.reshape(-1)[0]) if raw.size else {}
            layers.append(
                Layer(
                    _text(f["name"]),
                    _text(f["type"]),
                    _texts(f["inputs"]),
                    _texts(f["outputs"]),
                    _texts(f["params"]),
                    block,
                )
            )
        params = {}
        for s in _items(root["params"]):
            f = _fields(s)
            params[_text(f["name"])] = np.asarray(f["value"], dtype=np.float32)
    except (KeyError, ValueError, IndexError, AttributeError) as exc:
        raise WeightsError(f"{path}: the DagNN struct is malformed ({exc})".replace("\n", " ")) from None
    return DagNN(path, layers, params)


# ----------------------------------------------------------------------------- matching


def _topological(net: DagNN, keep: set[int]) -> list[int]:
    """Layer indices in data-flow order (ties in file order), restricted to ``keep``."""
    producers = {v: i for i, l in enumerate(net.layers) for v in l.outputs}
    deps = {i: {producers[v] for v in net.layers[i].inputs if v in producers} & keep for i in keep}
    users: dict[int, list[int]] = {i: [] for i in keep}
    for i, ds in deps.items():
        for d in ds:
            users[d].append(i)
    ready = deque(sorted(i for i in keep if not deps[i]))
    order: list[int] = []
    left = {i: len(ds) for i, ds in deps.items()}
    while ready:
        i = ready.popleft()
        order.append(i)
        for u in sorted(users[i]):
            left[u] -= 1
            if left[u] == 0:
                ready.append(u)
        ready = deque(sorted(ready))
    if len(order) != len(keep):
        raise WeightsError(f"{net.path}: the layer graph has a cycle")
    return order


def _ancestry(net: DagNN) -> tuple[list[str], dict[int, set[str]], dict[str, int]]:
    """Network inputs, the inputs each layer depends on, and which layer produces each variable."""
    produced = {v for l in net.layers for v in l.outputs}
    inputs = []
    for l in net.layers:
        for v in l.inputs:
            if v not in produced and v not in inputs:
                inputs.append(v)
    producers = {v: i for i, l in enumerate(net.layers) for v in l.outputs}
    memo: dict[int, set[str]] = {}

    def depends(i: int, seen: frozenset[int] = frozenset()) -> set[str]:
        if i in memo:
            return memo[i]
        if i in seen:
            raise WeightsError(f"{net.path}: the layer graph has a cycle at layer '{net.layers[i].name}'")
        out: set[str] = set()
        for v in net.layers[i].inputs:
            out |= depends(producers[v], seen | {i}) if v in producers else {v}
        memo[i] = out
        return out

    return inputs, {i: depends(i) for i in range(len(net.layers))}, producers


def _ancestors_of(net: DagNN, var: str, producers: dict[str, int]) -> set[int]:
    todo, out = [producers[var]], set()
    while todo:
        i = todo.pop()
        if i in out:
            continue
        out.add(i)
        todo.extend(producers[v] for v in net.layers[i].inputs if v in producers)
    return out


def _param(net: DagNN, layer: Layer, k: int) -> np.ndarray:
    name = layer.params[k]
    if name not in net.params:
        raise WeightsError(f"{net.path}: layer '{layer.name}' uses parameter '{name}', which the file does not hold")
    return net.params[name]


def _vec(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, order="F")


def _ints(v: Any, n: int) -> tuple[int, ...] | None:
    if v is None:
        return None
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, n)
    return tuple(int(x) for x in a) if a.size == n else None


@dataclass(frozen=True)
class Mapping:
    layer: str  # the file's layer name
    module: str  # our state-dict prefix


@dataclass
class Imported:
    kind: str  # GENERATOR or DEBLUR
    tensors: dict[str, torch.Tensor]
    mapping: list[Mapping]


def _fill(
    net: DagNN,
    slots: list[ConvSlot],
    convs: list[int],
    branch: str,
    producers: dict[str, int],
    bns: dict[str, int],
    bn_eps: dict[str, float],
    out: dict[str, torch.Tensor],
    mapping: list[Mapping],
) -> None:
    for k, slot in enumerate(slots):
        if k >= len(convs):
            raise WeightsError(
                f"{net.path}: the {branch} branch ends after {len(convs)} convolutions; expected {len(slots)}"
                f" (missing: {slot.module} with filters {slot.describe()})"
            )
        layer = net.layers[convs[k]]
        w = _param(net, layer, 0)
        shape = tuple(w.shape) + (1,) * (4 - w.ndim)  # MATLAB drops trailing singleton dimensions
        where = f"{net.path}: layer '{layer.name}' ({branch} convolution {k + 1}, our {slot.module})"
        if shape != slot.shape:
            got = "x".join(map(str, shape))
            raise WeightsError(f"{where} has filters {got} (HxWxCinxCout), expected {slot.describe()}")
        pad, stride = _ints(layer.block.get("pad"), 4), _ints(layer.block.get("stride"), 2)
        if pad is not None and pad != slot.pad:
            raise WeightsError(f"{where} has pad {list(pad)} [top bottom left right], expected {list(slot.pad)}")
        if stride is not None and stride != slot.stride:
            raise WeightsError(f"{where} has stride {list(stride)}, expected {list(slot.stride)}")
        weight = torch.from_numpy(np.ascontiguousarray(w.reshape(shape).transpose(3, 2, 0, 1)))
        bias = torch.from_numpy(_vec(_param(net, layer, 1)).copy()) if len(layer.params) > 1 else torch.zeros(shape[3])
        if bias.numel() != shape[3]:
            raise WeightsError(f"{where} has {bias.numel()} biases, expected {shape[3]}")
        out[f"{slot.module}.weight"] = weight
        mapping.append(Mapping(layer.name, slot.module))
        bn_index = bns.get(layer.outputs[0]) if layer.outputs else None
        if slot.bn is None:
            if bn_index is not None:
                raise WeightsError(
                    f"{where} is followed by BatchNorm '{net.layers[bn_index].name}'; this module has none"
                )
            out[f"{slot.module}.bias"] = bias
            continue
        if bn_index is None:
            raise WeightsError(f"{where} is not followed by a BatchNorm layer; this module has one")
        bn = net.layers[bn_index]
        if len(bn.params) != 3:
            raise WeightsError(
                f"{net.path}: BatchNorm layer '{bn.name}' has {len(bn.params)} parameters, expected 3 (multiplier, "
                "bias, moments)"
            )
        gain, beta, moments = (_param(net, bn, j) for j in range(3))
        c = shape[3]
        if _vec(gain).size != c or _vec(beta).size != c or moments.size != 2 * c:
            raise WeightsError(
                f"{net.path}: BatchNorm layer '{bn.name}' does not have {c} channels like '{layer.name}'"
            )
        moments = moments.reshape(c, 2, order="F") if moments.shape != (c, 2) else moments
        mean, sigma = moments[:, 0].astype(np.float64), moments[:, 1].astype(np.float64)
        if (sigma <= 0).any():
            raise WeightsError(f"{net.path}: BatchNorm layer '{bn.name}' has a non-positive sigma in its moments")
        eps = bn_eps[slot.bn]
        out[f"{slot.bn}.weight"] = torch.from_numpy(_vec(gain).copy())
        out[f"{slot.bn}.bias"] = torch.from_numpy(_vec(beta).copy())
        # BN(conv + b) = g (conv + b - mu) / sigma + beta: the bias moves into the mean.
        out[f"{slot.bn}.running_mean"] = torch.from_numpy((mean - bias.double().numpy()).astype(np.float32))
        out[f"{slot.bn}.running_var"] = torch.from_numpy(np.maximum(sigma**2 - eps, 0.0).astype(np.float32))
        mapping.append(Mapping(bn.name, slot.bn))
    if len(convs) > len(slots):
        extra = net.layers[convs[len(slots)]]
        raise WeightsError(
            f"{net.path}: layer '{extra.name}' is an extra convolution in the {branch} branch (expected {len(slots)})"
        )


def import_dagnn(net: DagNN, model: Speech2Vid) -> Imported:
    """Map a parsed generator or deblurrer onto ``model``'s state-dict names (refusing any mismatch)."""
    for layer in net.layers:
        if layer.params and layer.type not in (CONV, BNORM):
            raise WeightsError(
                f"{net.path}: layer '{layer.name}' ({layer.type}) has parameters; this model has no place for them"
            )
    inputs, depends, producers = _ancestry(net)
    keep = set(range(len(net.layers)))
    if "prediction" in producers:  # the generator's output: auxiliary loss branches are not part of it
        keep = _ancestors_of(net, "prediction", producers)
    order = _topological(net, keep)
    convs = [i for i in order if net.layers[i].type == CONV]
    bns = {net.layers[i].inputs[0]: i for i in order if net.layers[i].type == BNORM and net.layers[i].inputs}
    if not convs:
        raise WeightsError(f"{net.path}: no convolution layers ({CONV}) found")

    def first_cin(var: str) -> int:
        for i in convs:
            if depends[i] == {var}:
                w = _param(net, net.layers[i], 0)
                return int((tuple(w.shape) + (1, 1, 1))[2])
        return -1

    slots = expected_slots(model)
    bn_eps = {n: float(m.eps) for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    out: dict[str, torch.Tensor] = {}
    mapping: list[Mapping] = []
    used = [v for v in inputs if any(v in depends[i] for i in convs)]
    if len(used) == 1:
        kind = DEBLUR
        _fill(net, slots["deblur"], convs, "deblur", producers, bns, bn_eps, out, mapping)
    elif len(used) == 2:
        kind = GENERATOR
        audio = next((v for v in used if first_cin(v) == 1), None)
        if audio is None:
            raise WeightsError(
                f"{net.path}: no input feeds a 1-channel convolution (the 12x35 MFCC window); inputs: {', '.join(used)}"
            )
        face = next(v for v in used if v != audio)
        branches = {
            "audio": [i for i in convs if depends[i] == {audio}],
            "identity": [i for i in convs if depends[i] == {face}],
            "decoder": [i for i in convs if depends[i] == {audio, face}],
        }
        for branch, idx in branches.items():
            _fill(net, slots[branch], idx, branch, producers, bns, bn_eps, out, mapping)
    else:
        raise WeightsError(
            f"{net.path}: expected a generator (audio + face inputs) or a deblurrer (one image input), "
            f"found {len(used)} inputs: {', '.join(used) or 'none'}"
        )
    return Imported(kind, out, mapping)


def import_matconvnet(paths: list[str | Path], model: Speech2Vid) -> tuple[Speech2Vid, list[Imported]]:
    """Fill ``model`` from a generator file and, optionally, a deblurrer file (any order).

    Without a deblurrer the deblur CNN is set to an exact identity (all zero: the residual is 0),
    so the model outputs the generator's image unchanged.
    """
    if model.cfg.decoder.head != "pixels":
        raise WeightsError(
            f"model '{model.cfg.name}' has a {model.cfg.decoder.head} head, which the authors' MatConvNet files do not "
            "hold: import into --model paper (or a model YAML with the pixel head)"
        )
    results = [import_dagnn(read_dagnn(p), model) for p in paths]
    kinds = [r.kind for r in results]
    if kinds.count(GENERATOR) != 1 or kinds.count(DEBLUR) > 1:
        raise WeightsError(
            f"give one generator file (v201.mat) and at most one deblurrer file (v114.mat); got {', '.join(kinds)}"
        )
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for r in results:
        for k, v in r.tensors.items():
            state[k] = v.to(state[k].dtype)
    if DEBLUR not in kinds:
        for k in state:
            if k.startswith("deblur."):
                state[k].zero_()
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            state[f"{name}.num_batches_tracked"].zero_()
    model.load_state_dict(state)
    return model.eval(), results


def import_to_file(paths: list[str], output: str | Path, model_name: str = "paper") -> str:
    """``speech2vid import-matconvnet``: convert and write a safetensors file; returns a summary line."""
    from speech2vid.config import load_model_config
    from speech2vid.model.speech2vid import build_model
    from speech2vid.model.weights import save_weights

    output = Path(output)
    if output.suffix != ".safetensors":
        raise WeightsError(f"the output must be a .safetensors file, got {output}")
    if not output.parent.is_dir():
        raise WeightsError(f"output folder does not exist: {output.parent}")
    model, results = import_matconvnet(list(paths), build_model(load_model_config(model_name)))
    extra = {"source": "matconvnet", "source_files": ", ".join(Path(p).name for p in paths)}
    if all(r.kind != DEBLUR for r in results):
        extra["deblur"] = "identity (no deblurrer file given)"
    save_weights(model, output, extra=extra)
    layers = sum(len(r.mapping) for r in results)
    kinds = " + ".join(r.kind for r in results)
    return f"wrote {output}: model '{model.cfg.name}', {kinds}, {layers} layers mapped"
