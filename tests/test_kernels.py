"""Which of oneDNN's kernels a run computes on (runtime/kernels.py). oneDNN fixes them once per process, so
each run here is a process of its own, started as a user starts one."""
import json
import logging
import os
import subprocess
import sys

import pytest

from tinyvideo_mx.config import TrainConfig, make_config
from tinyvideo_mx.errors import SettingError
from tinyvideo_mx.runtime import cpu, kernels

HAS_AVX2 = "avx2" in cpu.read_cpuinfo()[1]
ISA_LINE = "dnnl_verbose,info,cpu,isa:"


def run_python(args, env=None, timeout=300):
    """``python ARGS`` in a process of its own with oneDNN's verbose log on; it must succeed: (the ISAs oneDNN
    says it runs on, the other lines it printed, its standard error)."""
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ if env is None else env, DNNL_VERBOSE="1"))
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    return ([line[len(ISA_LINE):] for line in lines if line.startswith(ISA_LINE)],
            [line for line in lines if not line.startswith("dnnl_verbose")], out.stderr)


def train_tiny(run_dir, options=(), env=None):
    """``tinyvideo-mx train --preset tiny`` in its own process with oneDNN's verbose log on: (the ISA
    oneDNN says it runs on, the SHA-256 of each file of the last checkpoint)."""
    isa, _, _ = run_python(["-m", "tinyvideo_mx.cli", "train", "--preset", "tiny", "--out", str(run_dir), "--quiet",
                            *options], env)
    meta = json.load(open(run_dir / "ckpt-00000004" / "meta.json"))
    return isa, meta["files"], meta["config"]["kernels"]


def without_isa_variable():
    """This environment as a fresh shell has it: no DNNL_MAX_CPU_ISA (the package may have set one for AMX)."""
    return {k: v for k, v in os.environ.items() if k != cpu.ISA_VARIABLE}


@pytest.mark.skipif(not HAS_AVX2, reason="needs a CPU with AVX2")
def test_a_run_held_to_avx2_kernels_computes_what_exporting_the_variable_computes(tmp_path):
    """--kernels avx2 puts oneDNN on its AVX2 kernels whatever the CPU (on an AVX-512 CPU its own log says
    "AVX-512" without it) and trains to the bit what ``DNNL_MAX_CPU_ISA=AVX2`` exported before the command
    trains; the run records its kernels, so a resume computes on the same ones."""
    fresh = without_isa_variable()
    held_isa, held_files, recorded = train_tiny(tmp_path / "held", ["--kernels", "avx2"], fresh)
    exported_isa, exported_files, _ = train_tiny(tmp_path / "exported", [], dict(fresh, DNNL_MAX_CPU_ISA="AVX2"))
    assert held_isa == exported_isa == ["Intel AVX2"]
    assert held_files == exported_files
    assert recorded == "avx2"
    native_isa, _, recorded = train_tiny(tmp_path / "native", [], fresh)
    assert recorded == "native" and len(native_isa) == 1
    assert ("AVX-512" in native_isa[0]) == ("avx512f" in cpu.read_cpuinfo()[1])


@pytest.mark.skipif(not HAS_AVX2, reason="needs a CPU with AVX2")
def test_a_served_model_computes_on_its_runs_kernels_and_gives_samples_numbers(tmp_path):
    """A model exported from a run on AVX2's kernels is served on them too, whatever the CPU: the response
    for a seed holds, to the bit, the numbers that sampling the run computes in a process of its own (on an
    AVX-512 CPU, native kernels would differ in the last bits)."""
    import numpy as np
    fresh = without_isa_variable()
    train_tiny(tmp_path / "run", ["--kernels", "avx2"], fresh)
    prefix = str(tmp_path / "export" / "generator")
    run_python(["-m", "tinyvideo_mx.cli", "export", str(tmp_path / "run"), "--out", prefix], fresh)
    served_isa, printed, _ = run_python(["-c",
        "import io, numpy as np; from tinyvideo_mx.serving.contract import SamplingService; "
        f"status, _, body = SamplingService({prefix!r}).respond(b'{{\"seed\": 5, \"n\": 4}}'); "
        f"np.save({str(tmp_path / 'served.npy')!r}, np.load(io.BytesIO(body))['video']); print(status)"], fresh)
    local_isa, _, _ = run_python(["-c",
        "import numpy as np; from tinyvideo_mx.generation.inference import latents, load_generator, run_generator; "
        f"G, config = load_generator({str(tmp_path / 'run')!r}); "
        f"np.save({str(tmp_path / 'local.npy')!r}, run_generator(G, latents(5, 4, config.nz))['video'])"], fresh)
    assert printed == ["200"] and served_isa == local_isa == ["Intel AVX2"]
    served, local = np.load(tmp_path / "served.npy"), np.load(tmp_path / "local.npy")
    assert served.shape == local.shape == (4, 3, 16, 16, 16) and np.array_equal(served, local)


def test_holding_the_kernels_sets_the_variable_for_the_first_primitive_only(tmp_path):
    """The variable is put back once oneDNN has read it: processes this one starts choose for themselves
    (AMX for an AMP run on a Xeon, say). A second run in the process that asks for other kernels gets the
    first's, with one warning naming both."""
    code = ("import os, logging; logging.basicConfig(); import tinyvideo_mx; from tinyvideo_mx.runtime import kernels; "
            "os.environ['DNNL_MAX_CPU_ISA'] = 'AVX512_CORE'; print(kernels.in_force()); print(kernels.use('avx2')); "
            "print(os.environ['DNNL_MAX_CPU_ISA']); print(kernels.use('native')); "
            "print(sorted(f for f in kernels.flags_in_force() if f.startswith(('avx512', 'amx'))))")
    isa, printed, stderr = run_python(["-c", code], without_isa_variable(), timeout=120)
    assert printed == ["None", "avx2", "AVX512_CORE", "avx2", "[]"]
    if HAS_AVX2:
        assert "Intel AVX2" in isa
    assert ("WARNING:tinyvideo_mx.runtime.kernels:this run asks for oneDNN's native kernels, but this process "
            "computes on the avx2 kernels of its first network (oneDNN keeps them for a process's life): run it "
            "in a process of its own for the samples the native kernels draw") in stderr


def test_the_machines_flags_stand_until_a_run_holds_the_kernels(monkeypatch):
    """Which form of a network runs faster depends on the kernels (runtime/precision.py): the flags of the
    instruction sets AVX2's kernels leave unused drop out once a run holds them; a CPU's flags passed in
    (tests of other CPUs) stand as given."""
    flags = {"sse4_2", "avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    monkeypatch.setattr(cpu, "read_cpuinfo", lambda *args: ("Test CPU", flags))
    monkeypatch.setattr(kernels, "_in_force", None)
    assert kernels.flags_in_force() == flags
    monkeypatch.setattr(kernels, "_in_force", "avx2")
    assert kernels.flags_in_force() == {"sse4_2", "avx2"}
    assert kernels.flags_in_force({"avx512f"}) == {"avx512f"}


def test_kernels_are_checked_where_they_are_named(caplog):
    assert make_config("demo").kernels == "avx2" and make_config("original").kernels == "native"
    with pytest.raises(SettingError) as err:
        TrainConfig(kernels="avx512")
    assert str(err.value) == "kernels must be one of ('native', 'avx2'), got 'avx512'"
    with pytest.raises(SettingError) as err:
        make_config("demo", amp=True)
    assert str(err.value) == ("amp needs kernels 'native' (--kernels native): oneDNN's bfloat16 kernels are "
                              "AVX-512's, not AVX2's")
    assert make_config("demo", amp=True, ctx="gpu0").amp       # a GPU's AMP is float16 on the GPU
    with pytest.raises(SettingError):
        kernels.use("avx512")
    # older runs' configurations have no kernels: they computed on the native ones, and resume on them
    old = TrainConfig().to_dict()
    del old["kernels"]
    assert TrainConfig.from_dict(old).kernels == "native"


def test_a_cpu_without_avx2_is_named_when_a_run_asks_for_its_kernels(monkeypatch, caplog):
    calls = []
    monkeypatch.setattr(cpu, "read_cpuinfo", lambda *args: ("Old CPU", {"sse4_2", "avx"}))
    import mxnet as mx
    monkeypatch.setattr(mx.nd, "Convolution", lambda *args, **kw: calls.append(os.environ[cpu.ISA_VARIABLE])
                        or mx.nd.ones((1,)))
    with caplog.at_level(logging.WARNING, logger="tinyvideo_mx.runtime.kernels"):
        kernels._hold_to("avx2")
    assert calls == ["AVX2"]
    assert caplog.messages == ["this CPU (Old CPU) has no AVX2: oneDNN computes on the kernels it has, and this "
                               "run draws other samples than on a CPU with AVX2"]


def test_the_readmes_draw_is_told_apart_from_another_machines():
    """The demo draws the README's table only where oneDNN guesses the caches (every CPU but Intel's), MXNet's
    OpenBLAS sums as Haswell's kernels do (Zen's are the same) and two threads split the sums; each other
    machine hears every reason it differs."""
    amd, avx2 = "AuthenticAMD", {"sse4_2", "avx", "avx2"}
    assert kernels.demo_draw(amd, avx2, "Zen", "2") == []
    assert kernels.demo_draw(amd, avx2 | {"avx512f"}, "Haswell", "2") == []
    assert kernels.demo_draw("GenuineIntel", avx2 | {"avx512f", "amx_bf16"}, "Prescott", "2") == [
        "oneDNN sizes its blocks by this Intel CPU's own caches (it guesses them alike on every other CPU)",
        "MXNet's OpenBLAS runs its Prescott kernels (the table's: Haswell or Zen)"]
    assert kernels.demo_draw(amd, {"sse4_2", "avx"}, None, None) == [
        "this CPU has no AVX2", "MXNet's OpenBLAS runs its unknown kernels (the table's: Haswell or Zen)",
        "OMP_NUM_THREADS is unset (the table's: 2)"]
    assert kernels.demo_draw(amd, avx2, "Zen", "4") == ["OMP_NUM_THREADS is 4 (the table's: 2)"]


@pytest.mark.parametrize("core", ["Haswell", "Zen"])
def test_the_blas_kernels_are_read_from_the_library_mxnet_loaded(core):
    """OPENBLAS_CORETYPE chooses OpenBLAS's kernels when libmxnet loads it; ``blas_core`` reads back the
    choice from that library, and doctor's line names it."""
    code = ("import tinyvideo_mx; from tinyvideo_mx.runtime import doctor, kernels; print(kernels.blas_core()); "
            "print(doctor.draw_line())")
    _, printed, _ = run_python(["-c", code], dict(os.environ, OPENBLAS_CORETYPE=core, OMP_NUM_THREADS="1"),
                               timeout=120)
    assert printed[0] == core
    assert printed[1].startswith("Draw       the demo (--kernels avx2) draws another table than the README's here "
                                 "(README, \"A run is a draw\"): ")
    assert printed[1].endswith("OMP_NUM_THREADS is 1 (the table's: 2)") and "OpenBLAS" not in printed[1]
