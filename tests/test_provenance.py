"""provenance.json's environment: the CPU, its instruction set, the BLAS and the threads."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from ganplify.results import provenance

X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx fma avx2 avx512f avx512bw avx512vl amx_tile amx_bf16

processor\t: 1
model name\t: another
"""

ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm sve sve2
CPU part\t: 0xd4f
"""

TORCH_CONFIG = """PyTorch built with:
  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605 for Intel(R) 64
  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71049cd69a3df32adcccb623b12cd7baa22)
  - OpenMP 201511 (a.k.a. OpenMP 4.5)
  - CPU capability usage: AVX512
  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, LAPACK_INFO=mkl, USE_MKL=ON,
"""


def test_parse_cpuinfo_x86_and_arm():
    model, simd = provenance.parse_cpuinfo(X86)
    assert model == "Intel(R) Xeon(R) Platinum 8480+"  # the first processor's
    assert simd == [
        "sse4_2",
        "avx",
        "fma",
        "avx2",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "amx_tile",
        "amx_bf16",
    ]
    assert provenance.parse_cpuinfo(ARM) == ("0xd4f", ["asimd", "sve", "sve2"])
    assert provenance.parse_cpuinfo("") == (None, [])


def test_parse_torch_config():
    assert provenance.parse_torch_config(TORCH_CONFIG) == {
        "blas": "mkl",
        "lapack": "mkl",
        "mkl": "2024.2-Product Build 20240605",
        "onednn": "v3.12.0",
        "openmp": "201511",
        "cpu_capability_usage": "AVX512",
    }
    assert set(provenance.parse_torch_config("").values()) == {None}
    # this torch's own build names its BLAS
    assert provenance.parse_torch_config(torch.__config__.show())["blas"]


def test_environment_records_cpu_blas_and_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    env = json.loads(json.dumps(provenance.environment()))  # JSON as written
    cpu, blas, threads = env["cpu"], env["blas"], env["threads"]
    assert cpu["machine"] and cpu["logical_cores"] >= 1 and isinstance(cpu["simd"], list)
    assert cpu["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    if sys.platform == "linux":
        assert cpu["model"]
    assert blas["torch"]["blas"] and "mkl_available" in blas["torch"]
    assert blas["numpy"] is None or "name" in blas["numpy"]
    assert threads["torch_intra_op"] == torch.get_num_threads()
    assert threads["OMP_NUM_THREADS"] == "3" and threads["ATEN_CPU_CAPABILITY"] is None
    assert set(provenance.THREAD_VARIABLES + provenance.ISA_VARIABLES) <= set(threads)


def test_provenance_imports_torch_lazily():
    code = "import sys, ganplify.results.provenance; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
