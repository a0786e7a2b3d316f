"""build_engines.quantize.int8_saturates: 7-bit INT8 weights where ONNX Runtime's kernels would saturate (x86
without VNNI), full 8-bit elsewhere; the choice is part of the engine's recipe, so a cached engine moves with it."""

from __future__ import annotations

import platform

import pytest

from speech2vid.build_engines.build import recipe
from speech2vid.build_engines.quantize import int8_saturates
from speech2vid.config import Settings

AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
VNNI = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni\n"


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="the flags are x86's")
def test_only_an_x86_cpu_without_vnni_saturates() -> None:
    assert int8_saturates(AVX2)
    assert not int8_saturates(VNNI)
    assert not int8_saturates("processor\t: 0\n")  # no flags line: nothing known, nothing changed


def test_the_recipe_records_the_weights_range() -> None:
    want = recipe("onnxruntime", "int8", Settings())
    assert want["seven_bit_weights"] == int8_saturates()
