"""One MXNet per install target, and every machine told plainly what it can run (`tinyvideo-mx doctor`,
`--ctx gpuN` checked before MXNet loads). GPUs are stood in by a fake `nvidia-smi` on PATH."""
import json
import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from tinyvideo_mx.cli import main
from tinyvideo_mx.errors import SettingError
from tinyvideo_mx.runtime import compat, gpu_support, precision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
A100 = "0, NVIDIA A100-SXM4-80GB, 8.0, 81920 MiB"
H100 = "1, NVIDIA H100 80GB HBM3, 9.0, 81559 MiB"


def resolve(target, tmp_path):
    """What ``pip install TARGET`` would install into an empty environment (metadata only: pip reads the
    CUDA wheel's metadata from the index without downloading its 476 MB)."""
    report = tmp_path / f"report-{abs(hash(target))}.json"
    return subprocess.Popen([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                             "--report", str(report), target], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True), report


def test_each_install_target_resolves_to_exactly_one_mxnet(tmp_path):
    targets = {f"{ROOT}[gpu]": "mxnet-cu112", f"{ROOT}[cpu,test]": "mxnet"}   # [cpu,test]: the README's command
    running = {target: resolve(target, tmp_path) for target in targets}
    for target, (process, report) in running.items():
        _, err = process.communicate(timeout=600)
        if process.returncode and ("Could not fetch" in err or "NewConnectionError" in err):
            pytest.skip(f"the package index is not reachable: {err.strip().splitlines()[-1]}")
        assert process.returncode == 0, err
        names = [item["metadata"]["name"].lower() for item in json.load(open(report))["install"]]
        mxnets = [n for n in names if gpu_support._MXNET_NAME.match(n.replace("_", "-"))]
        assert mxnets == [targets[target]], (target, names)


def test_a_broken_mxnet_install_is_one_line_with_the_fix():
    both = [("mxnet", "1.9.1"), ("mxnet-cu112", "1.9.1")]
    assert gpu_support.install_problem(both) == (
        "2 MXNet distributions are installed (mxnet 1.9.1, mxnet-cu112 1.9.1) and overwrite each other's files: "
        "pip uninstall -y mxnet mxnet-cu112, then pip install 'tinyvideo-mx[gpu]' (CUDA) or '[cpu]'")
    assert gpu_support.install_problem([]).startswith("MXNet is not installed: pip install 'tinyvideo-mx[cpu]'")
    assert gpu_support.install_problem([("mxnet", "1.9.1")]) is None
    # and this test environment has exactly one
    assert len(gpu_support.installed_mxnet()) == 1


@pytest.mark.parametrize("capability, supported, words", [
    ((3, 7), False, "below 5.0"),
    ((5, 2), True, "on its sm_50 kernels"),
    ((7, 5), True, "on its sm_70 kernels"),
    ((8, 0), True, "supported by MXNet 1.9.1's CUDA wheels"),
    ((8, 6), True, "supported by MXNet 1.9.1's CUDA wheels"),
    ((8, 9), True, "on its sm_86 kernels"),
    ((9, 0), False, "stop at 8.6 and carry no PTX; train on CPU or an Ampere-or-older GPU"),
    ((12, 0), False, "stop at 8.6"),
])
def test_compute_capability_verdicts(capability, supported, words):
    ok, reason = gpu_support.capability_verdict(capability)
    assert ok is supported and words in reason
    assert reason.startswith(f"compute capability {capability[0]}.{capability[1]}: ")


@pytest.fixture
def stand_in_gpus(tmp_path, monkeypatch):
    """An `nvidia-smi` on PATH that reports an A100 and an H100."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "nvidia-smi"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$*" in
          *--query-gpu=index,name,compute_cap,memory.total*) printf '%s\\n' '{A100}' '{H100}' ;;
          *) echo "stand-in nvidia-smi" ;;
        esac
        """))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_doctor_reports_this_machine_and_the_stand_in_gpus(stand_in_gpus):
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"Python     {platform.python_version()}")
    assert lines[1] == "MXNet      installed: mxnet 1.9.1"
    assert lines[2].startswith("           imports as 1.9.1: CUDA no, CUDNN no, oneDNN yes")
    assert any(line.startswith("           --amp on CPU (bfloat16): ") for line in lines)
    if precision.data_gradient_by_forward("bfloat16"):
        assert ("           G under --amp: phases form (g_form auto; its 3-D data gradients as forward convolutions: "
                "no AMX backward-data kernel; docs/performance.md)") in lines
        assert ("           D under --amp: its strided data gradients as float32 transposed convolutions (faster than "
                "the bfloat16 kernel without AMX; docs/performance.md)") in lines
    elif precision.cpu_supports_bfloat16():
        assert "           G under --amp: phases form (g_form auto; docs/performance.md)" in lines
        assert not any(line.startswith("           D under --amp") for line in lines)
    assert any(line.startswith("Threads    ") and "OMP_NUM_THREADS=" in line for line in lines)
    assert ("           MXNET_CPU_PARALLEL_SIZE=2147483647 (tinyvideo-mx sets it to 2147483647 unless you do: copies "
            "without OpenMP, one OpenMP team; docs/performance.md)") in lines
    assert lines[-2] == ("GPU 0      NVIDIA A100-SXM4-80GB (81920 MiB): not usable with this install: compute "
                         "capability 8.0: supported by MXNet 1.9.1's CUDA wheels, but MXNet here is a CPU build "
                         "(pip uninstall -y mxnet && pip install 'tinyvideo-mx[gpu]')")
    assert lines[-1] == ("GPU 1      NVIDIA H100 80GB HBM3 (81559 MiB): NOT usable: compute capability 9.0: MXNet "
                         "1.9.1's CUDA wheels stop at 8.6 and carry no PTX; train on CPU or an Ampere-or-older GPU")


def test_doctor_with_a_supported_gpu_and_a_cuda_build():
    gpus = gpu_support.query_gpus() or [gpu_support.Gpu(0, "A100", (8, 0), "80 GB")]
    from tinyvideo_mx.runtime.doctor import report
    lines, healthy = report(gpus=gpus[:1], distributions=[("mxnet-cu112", "1.9.1")])
    assert healthy
    assert lines[-1].startswith("GPU 0      A100 (80 GB): usable: compute capability 8.0")


@pytest.mark.parametrize("flags,line", [
    ("avx2 avx512f avx512_bf16", "           float32: G in deconvolution form, D in strided form at the original's "
                                 "widths (g_form, d_form auto: strided backward passes on direct kernels; "
                                 "docs/performance.md)"),
    ("avx2", "           float32: G in phases form, D in phases form at the original's widths (g_form, d_form "
             "auto: strided backward passes on GEMM without AVX-512; docs/performance.md)")])
def test_doctor_says_which_forms_float32_training_takes_on_this_cpu(tmp_path, flags, line):
    from tinyvideo_mx.runtime.doctor import report
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"model name\t: Test CPU\nflags\t\t: fpu sse2 {flags}\n")
    lines, _ = report(gpus=[], distributions=[("mxnet", "1.9.1")], cpuinfo=str(cpuinfo))
    assert line in lines


def test_an_unsupported_gpu_fails_before_mxnet_loads(stand_in_gpus):
    """--ctx gpu1 (the H100) on train, sample and serve: one line, exit 1, and MXNet never imported (so
    no network was built)."""
    code = textwrap.dedent("""\
        import sys
        from click.testing import CliRunner
        from tinyvideo_mx.cli import main
        for args in (["train", "--ctx", "gpu1", "--out", "r"], ["sample", "run", "--ctx", "gpu1"],
                     ["serve", "prefix", "--ctx", "gpu1"]):
            result = CliRunner().invoke(main, args)
            print(result.exit_code, result.output.strip())
        print("mxnet imported:", "mxnet" in sys.modules)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=stand_in_gpus,
                         env=dict(os.environ), timeout=60)
    lines = out.stdout.splitlines()
    message = ("1 Error: --ctx gpu1 (NVIDIA H100 80GB HBM3): compute capability 9.0: MXNet 1.9.1's CUDA wheels "
               "stop at 8.6 and carry no PTX; train on CPU or an Ampere-or-older GPU")
    assert lines == [message, message, message, "mxnet imported: False"], out.stdout + out.stderr


def test_a_supported_gpu_on_a_cpu_build_says_how_to_get_the_cuda_build(stand_in_gpus):
    with pytest.raises(SettingError) as e:
        gpu_support.check_gpu_contexts("gpu0", distributions=[("mxnet", "1.9.1")])
    assert str(e.value) == ("--ctx gpu0: the installed MXNet is a CPU build (mxnet): pip uninstall -y mxnet, then "
                            "pip install 'tinyvideo-mx[gpu]'")
    with pytest.raises(SettingError, match=r"^--ctx gpu3: nvidia-smi lists GPUs 0, 1 only$"):
        gpu_support.check_gpu_contexts("gpu3", distributions=[("mxnet-cu112", "1.9.1")])
    gpu_support.check_gpu_contexts("gpu0", distributions=[("mxnet-cu112", "1.9.1")])    # A100 + CUDA build: fine


# -- the Pythons we support (compat.py) ---------------------------------------------------------------
def test_removed_numpy_aliases_are_put_back_as_the_builtins(monkeypatch):
    for name in compat.REMOVED_ALIASES:
        monkeypatch.delitem(np.__dict__, name, raising=False)      # as numpy >= 1.24 (Python 3.12) has them
    assert compat.restore_aliases() == list(compat.REMOVED_ALIASES)
    assert (np.bool, np.int, np.float, np.object, np.complex, np.str) == (bool, int, float, object, complex, str)
    assert compat.restore_aliases() == []


def test_onnx_mapping_is_rebuilt_where_onnx_dropped_it(monkeypatch):
    """onnx >= 1.16 (the one Python 3.12 gets) has no onnx.mapping; the rebuilt tables agree with onnx
    1.15's on every dtype MXNet's exporter converts."""
    onnx = pytest.importorskip("onnx")
    from tinyvideo_mx.runtime import compat
    if not hasattr(onnx, "mapping"):
        pytest.skip("this onnx has no onnx.mapping to compare with")
    real = onnx.mapping
    monkeypatch.delattr(onnx, "mapping")
    monkeypatch.delitem(sys.modules, "onnx.mapping")
    rebuilt = compat.onnx_mapping()
    assert rebuilt is not real and onnx.mapping is rebuilt and sys.modules["onnx.mapping"] is rebuilt
    for dtype in (np.float32, np.float64, np.float16, np.int8, np.uint8, np.int32, np.int64, np.bool_):
        dtype = np.dtype(dtype)
        tensor_type = real.NP_TYPE_TO_TENSOR_TYPE[dtype]
        assert rebuilt.NP_TYPE_TO_TENSOR_TYPE[dtype] == tensor_type, dtype
        assert rebuilt.TENSOR_TYPE_TO_NP_TYPE[tensor_type] == real.TENSOR_TYPE_TO_NP_TYPE[tensor_type], dtype
    monkeypatch.setattr(onnx, "mapping", real)
    assert compat.onnx_mapping() is real


THREADS_AFTER_A_MAIN_THREAD_COPY = textwrap.dedent("""
    import os, sys
    import numpy as np
    if sys.argv[1] == "mxnet first":         # numpy >= 1.24 needs the removed aliases back first (compat.py)
        import builtins
        for name in sys.argv[2].split(","):
            np.__dict__.setdefault(name, getattr(builtins, name))
        import mxnet as mx
    import tinyvideo_mx
    import mxnet as mx
    (mx.nd.ones((10 ** 6,)) * 2).wait_to_read()            # the engine's OpenMP team exists
    before = len(os.listdir("/proc/self/task"))
    mx.nd.array(np.zeros(10 ** 6, np.float32)).asnumpy()   # 4 MB in and out on this, the main, thread
    mx.nd.waitall()
    print(before, len(os.listdir("/proc/self/task")), os.environ["MXNET_CPU_PARALLEL_SIZE"])
""")


@pytest.mark.parametrize("users_value, order, new_threads", [(None, "package first", 0), (None, "mxnet first", 0),
                                                            ("200000", "package first", 1)])
def test_copies_on_the_main_thread_start_no_second_openmp_team(users_value, order, new_threads):
    """A batch in and samples out on Python's thread must not start an OpenMP team of its own: with two
    teams libgomp stops spinning and every later step is slower (runtime/threads.py), also where mxnet was
    imported first. MXNet's default threshold (a user's choice, kept) shows the team this prevents."""
    env = {k: v for k, v in os.environ.items() if k != "MXNET_CPU_PARALLEL_SIZE"}
    env["OMP_NUM_THREADS"] = "2"
    if users_value:
        env["MXNET_CPU_PARALLEL_SIZE"] = users_value
    out = subprocess.run([sys.executable, "-c", THREADS_AFTER_A_MAIN_THREAD_COPY, order,
                          ",".join(compat.REMOVED_ALIASES)], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after, threshold = out.stdout.split()
    assert int(after) - int(before) == new_threads
    assert threshold == (users_value or str(2 ** 31 - 1))


@pytest.mark.skipif(not os.environ.get("TINYVIDEO_MX_OTHER_PYTHON"),
                    reason="set TINYVIDEO_MX_OTHER_PYTHON to another supported Python with tinyvideo-mx installed "
                           "(.ci/run does)")
def test_a_tiny_run_is_bit_identical_on_the_other_python(tmp_path):
    """The same numbers on every supported Python: losses of every iteration and the saved weights."""
    runs = {}
    for name, python in (("this", sys.executable), ("other", os.environ["TINYVIDEO_MX_OTHER_PYTHON"])):
        out = subprocess.run([python, "-m", "tinyvideo_mx.cli", "train", "--preset", "tiny", "--quiet", "--sample-every",
                              "0", "--iterations", "4", "--out", str(tmp_path / name)],
                             capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="2"))
        assert out.returncode == 0, (python, out.stderr[-2000:])
        with open(tmp_path / name / "metrics.jsonl") as f:
            runs[name] = [(r["iteration"], r["loss_d"], r["loss_g"]) for r in map(json.loads, f)]
    assert runs["this"] == runs["other"] and len(runs["this"]) == 4
    weights = [(tmp_path / name / "ckpt-00000004" / "G.params").read_bytes() for name in runs]
    assert weights[0] == weights[1]


@pytest.mark.parametrize("vendor,line", [
    ("AuthenticAMD", "Draw       the demo (--kernels avx2) draws the README's table here"),
    ("GenuineIntel", "Draw       the demo (--kernels avx2) draws another table than the README's here (README, \"A run "
                     "is a draw\"): oneDNN sizes its blocks by this Intel CPU's own caches (it guesses them alike on "
                     "every other CPU)")])
def test_doctor_says_whether_the_demo_draws_the_readmes_table_here(tmp_path, monkeypatch, vendor, line):
    from tinyvideo_mx.runtime import doctor, kernels
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\nmodel name\t: Test CPU\nflags\t\t: fpu avx avx2\n\n"
                       "processor\t: 1\nvendor_id\t: SomeoneElse\nflags\t\t: fpu\n")
    monkeypatch.setattr(kernels, "blas_core", lambda: "Zen")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    lines, _ = doctor.report(gpus=[], distributions=[("mxnet", "1.9.1")], cpuinfo=str(cpuinfo))
    assert line in lines


def test_doctor_cannot_tell_the_draw_where_the_system_does_not_describe_its_cpu(tmp_path, monkeypatch):
    """No /proc/cpuinfo (not Linux): the line says it cannot tell rather than "no AVX2", unless a reason it
    can read (the thread count here) settles that the table differs anyway."""
    from tinyvideo_mx.runtime import doctor, kernels
    missing = str(tmp_path / "no-cpuinfo")
    monkeypatch.setattr(kernels, "blas_core", lambda: "Haswell")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert doctor.draw_line(missing) == (
        f"Draw       cannot tell whether the demo (--kernels avx2) draws the README's table here: {missing} does not "
        "describe this CPU (its AVX2, and whose caches oneDNN reads)")
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert doctor.draw_line(missing) == (
        "Draw       the demo (--kernels avx2) draws another table than the README's here (README, \"A run is a "
        "draw\"): OMP_NUM_THREADS is 4 (the table's: 2)")
