"""Training and the stabiliser keep the memory they free (runtime/memory.py): a large block freed and allocated again is not
fresh pages (no page faults) once training has started, unless the user set malloc up themselves."""
import json
import os
import subprocess
import sys

import pytest

from tinyvideo_mx.runtime import doctor, memory

BLOCK = 64 << 20          # above any mmap threshold glibc picks by itself (at most 32 MiB)
PAGES = BLOCK // 4096

# Allocates, touches and frees BLOCK twice; prints the decision and the minor page faults of the second
# touch. The first use of a block faults either way; the second faults again only if free() gave it back.
PROBE = r'''
import ctypes, json, resource
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
libc.memset.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)
libc.memset.restype = ctypes.c_void_p

def faults_of_touching_a_new_block(size):
    block = libc.malloc(size)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    libc.memset(block, 1, size)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    libc.free(block)
    return faults

decision = None
SETUP
faults_of_touching_a_new_block(BLOCK)
print(json.dumps({"decision": decision, "faults": faults_of_touching_a_new_block(BLOCK)}))
'''

pytestmark = pytest.mark.skipif(memory.glibc() is None or not sys.platform.startswith("linux"),
                                reason="glibc's malloc on Linux only")


def probe(setup, tmp_path, **extra_env):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", memory.SWITCH)}
    env.update(extra_env)
    code = PROBE.replace("BLOCK", str(BLOCK)).replace("SETUP", setup)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_freed_block_comes_back_as_fresh_pages_by_default(tmp_path):
    # the baseline the other tests compare with: glibc mmaps 64 MiB and unmaps it on free
    assert probe("", tmp_path)["faults"] >= 0.9 * PAGES


def test_after_keep_freed_memory_a_freed_block_is_reused_without_faults(tmp_path):
    result = probe("from tinyvideo_mx.runtime import memory\n"
                   "decision = memory.keep_freed_memory()\n"
                   "assert memory.keep_freed_memory() == decision   # once: later calls report the first", tmp_path)
    assert result["decision"] == ("training and the stabiliser's feature matching keep freed memory "
                                  "(mallopt: no mmap, one arena, 1 GiB top pad)")
    assert result["faults"] < 0.05 * PAGES


def test_training_keeps_freed_memory(tmp_path):
    result = probe("from tinyvideo_mx.config import make_config\n"
                   "from tinyvideo_mx.runtime import memory\n"
                   "from tinyvideo_mx.training.loop import GanTraining\n"
                   "GanTraining(make_config('tiny', iterations=1), 'run', progress=False)\n"
                   "decision = memory.keep_freed_memory()", tmp_path)
    assert result["decision"].startswith("training and the stabiliser's feature matching keep freed memory")
    assert result["faults"] < 0.05 * PAGES


@pytest.mark.parametrize("faithful", [True, False])
def test_the_stabilisers_feature_matching_keeps_freed_memory(tmp_path, faithful):
    """The faithful mode (features matched on full frames) keeps freed memory; the default's flow does not ask."""
    result = probe("from stabilize import StabilizeConfig, stabilize_many\n"
                   "from stabilize.synthetic import MOTIONS, camera, texture\n"
                   "from stabilize.video import write_video\n"
                   "from tinyvideo_mx.runtime import memory\n"
                   "write_video('v.avi', camera(texture(1, 480, (1, 1, 1)), 20, MOTIONS['translate']), fps=25)\n"
                   "assert memory._decision is None\n"
                   f"config = StabilizeConfig.faithful() if {faithful} else StabilizeConfig()\n"
                   "assert stabilize_many(['v.avi'], 'out', config)['clips_written'] == 1\n"
                   "decision = memory._decision            # what stabilize_many decided (None: it did not ask)", tmp_path)
    if faithful:
        assert result["decision"].startswith("training and the stabiliser's feature matching keep freed memory")
        assert result["faults"] < 0.05 * PAGES
    else:
        assert result["decision"] is None and result["faults"] >= 0.9 * PAGES


@pytest.mark.parametrize("variable, value", [("MALLOC_ARENA_MAX", "2"),
                                             ("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")])
def test_the_users_malloc_setting_wins(tmp_path, variable, value):
    result = probe("from tinyvideo_mx.runtime import memory\ndecision = memory.keep_freed_memory()",
                   tmp_path, **{variable: value})
    assert result["decision"] == f"your {variable} is in force: malloc left as you set it"
    assert result["faults"] >= 0.9 * PAGES       # nothing changed: the block is mmapped and unmapped again


def test_the_switch_turns_it_off(tmp_path):
    result = probe("from tinyvideo_mx.runtime import memory\ndecision = memory.keep_freed_memory()",
                   tmp_path, **{memory.SWITCH: "0"})
    assert result["decision"] == f"off ({memory.SWITCH}=0)"
    assert result["faults"] >= 0.9 * PAGES


def test_plan_by_platform_and_library():
    assert memory.plan({}, "darwin") == (False, "not Linux: the system's malloc as it is")
    assert memory.plan({}, "linux", has_glibc=False) == (False, "no glibc: the C library's malloc as it is")
    assert memory.plan({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}, "linux", has_glibc=True)[0] is True
    assert memory.plan({"MALLOC_TOP_PAD_": "131072"}, "linux", has_glibc=True) == \
        (False, "your MALLOC_TOP_PAD_ is in force: malloc left as you set it")


def test_doctor_says_what_training_does_with_memory(monkeypatch):
    monkeypatch.delenv(memory.SWITCH, raising=False)
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "0")
    lines, _ = doctor.report(gpus=[], distributions=[("mxnet", "1.9.1")])
    assert "Memory     your MALLOC_MMAP_MAX_ is in force: malloc left as you set it (runtime/memory.py)" in lines
