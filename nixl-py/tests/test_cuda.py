"""CUDA tensors without a GPU: cuda_child.py runs on the fake CUDA driver of nixl-core's tests
(``nixl-core/tests/fake_cuda/fake_device.c``, one "device" backed by host memory, built here
with ``cc``), moving data between ``__cuda_array_interface__`` arrays, torch-like CUDA tensors
and host memory. It checks the input path, registration and routing, not a GPU's behaviour
(nixl-core's GPU tests do that). Without any driver, describing works and registration fails
with a typed error that names CUDA."""

import os
import re
import shutil
import subprocess
import sys

import nixl._bindings as nb
from conftest import HERE, require

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
FAKE_C = os.path.join(REPO, "nixl-core", "tests", "fake_cuda", "fake_device.c")
DRIVER_RS = os.path.join(REPO, "nixl-core", "src", "backend", "cuda", "driver.rs")


def driver_symbols():
    """The entry points nixl-core requires of a driver (``driver::SYMBOLS``)."""
    text = open(DRIVER_RS).read()
    block = re.search(r"pub const SYMBOLS: &\[&str\] = &\[(.*?)\];", text, re.S)
    assert block, "driver::SYMBOLS not found in driver.rs"
    return re.findall(r'"(\w+)"', block.group(1))


def build_fake(tmp_path):
    """libcuda.so.1 from the fake driver, plus stubs for the entry points it leaves out."""
    if shutil.which("cc") is None:
        require("cc", "no C compiler to build the fake libcuda")
    src = open(FAKE_C).read()
    for name in driver_symbols():
        if f" {name}(" not in src:
            src += f"int {name}(void) {{ return 999; }}\n"
    (tmp_path / "fake.c").write_text(src)
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O1", "-o", str(tmp_path / "libcuda.so.1"),
         str(tmp_path / "fake.c"), "-lpthread"],
        check=True,
    )
    os.symlink("libcuda.so.1", tmp_path / "libcuda.so")
    return tmp_path


def test_cuda_tensors_on_the_fake_driver(tmp_path):
    fake = build_fake(tmp_path)
    env = dict(os.environ, LD_LIBRARY_PATH=str(fake))
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "cuda_child.py")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, f"child failed:\n{out.stdout}\n{out.stderr}"
    assert "CUDA-OK Fake CUDA device" in out.stdout, out.stdout + out.stderr


class _CudaArray:
    __cuda_array_interface__ = {
        "data": (0x7F00_0000_0000, False), "shape": (1024,), "typestr": "|u1",
        "strides": None, "version": 3,
    }


def test_cuda_array_without_a_driver_is_a_clear_error(tmp_path):
    """Without a driver (none installed, as in CI; an empty library path), the array is
    described as VRAM and registering it raises a typed error that names CUDA. (Where a
    driver is installed, the bogus pointer must still be refused with a typed error.)"""
    env = dict(os.environ, LD_LIBRARY_PATH=str(tmp_path))
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from test_cuda import _CudaArray\n"
        "import nixl._bindings as nb\n"
        "from nixl._api import nixl_agent, nixl_agent_config\n"
        "a = nixl_agent('nocuda', nixl_agent_config(backends=['UCX']))\n"
        "d = a.get_xfer_descs(_CudaArray())\n"
        "assert d.getType() == nb.VRAM_SEG and d[0] == (0x7F0000000000, 1024, 0), d\n"
        "try:\n"
        "    a.register_memory(_CudaArray())\n"
        "except Exception as e:\n"
        "    print('ERR', type(e).__name__, e)\n"
        % HERE
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60, cwd=HERE)
    assert out.returncode == 0, out.stdout + out.stderr
    err = [line for line in out.stdout.splitlines() if line.startswith("ERR ")]
    assert err and err[0].startswith("ERR nixl"), f"registered a bogus device pointer: {out.stdout}"
    assert "CUDA" in err[0] or "cuPointer" in err[0], err[0]
