"""Training and the stabiliser's feature matching keep the memory they free: glibc's malloc asked, once per
process, not to give large blocks back to the kernel.

A full-size training step allocates and frees the same few hundred MiB of arrays every iteration. glibc
serves blocks above its mmap threshold (at most 32 MiB, and blocks above a thread arena's 64 MiB always)
with fresh ``mmap`` pages and unmaps them when freed, so every step touches them for the first time again:
a page fault per 4 KiB. In MXNet 1.9.1's step that showed as the bfloat16 cast of D's largest weight gradient
taking 46-49 ms in the step against 3.2 ms on reused memory, and full-size float32 steps 5-18 % slower
(docs/performance.md, "Training keeps the memory it frees"). So ``keep_freed_memory`` tells glibc, with
``mallopt`` (which works after MXNet has loaded):

* ``M_MMAP_MAX`` 0 - no block is served by ``mmap``; every block comes from the heap and returns to it;
* ``M_ARENA_MAX`` 1 - threads created from now on share the main heap, so MXNet's engine threads' large
  blocks are reused there too (a thread arena cannot hold a block above 64 MiB and would ``mmap`` it);
* ``M_TOP_PAD`` 1 GiB - the heap grows and shrinks in steps of 1 GiB, not page by page.

The price is memory: the process keeps its peak (4-15 % more RSS, flat over a run) until it ends. The
stabiliser's workers (stabilize/runner.py) ask for it when they match features, as the faithful mode does: SIFT
builds and frees pyramids of full frames for every frame, which ran 12.4-12.9 frames/s on fresh pages and
18.9-20.6 on reused memory (2 cores, 640x480; docs/performance.md). The default's optical flow measured within
noise either way, more often below than above, and keeps glibc's defaults, as sampling and serving do (a
server's memory must follow its load).

The user's own malloc settings win: with any ``MALLOC_`` variable or a ``glibc.malloc`` tunable in
``GLIBC_TUNABLES`` set, nothing is changed. (Setting one of them by hand also turns off glibc's own
adjustment of its mmap threshold, which made the demo's training 1.35x slower in one measurement: set them
only to measure.) ``TINYVIDEO_MX_KEEP_FREED_MEMORY=0`` turns it off without touching malloc.
"""
import ctypes
import os
import sys

M_TOP_PAD = -2           # mallopt parameter numbers, glibc's malloc.h
M_MMAP_MAX = -4
M_ARENA_MAX = -8
SETTINGS = ((M_MMAP_MAX, 0), (M_ARENA_MAX, 1), (M_TOP_PAD, 1 << 30))
SWITCH = "TINYVIDEO_MX_KEEP_FREED_MEMORY"

_decision = None         # what keep_freed_memory decided in this process (it decides once)


def users_malloc_setting(environ):
    """The name of a malloc setting the user made in ``environ`` (a ``MALLOC_`` variable such as
    MALLOC_ARENA_MAX or MALLOC_TOP_PAD_, or GLIBC_TUNABLES naming a ``glibc.malloc`` tunable), or None."""
    for name in sorted(environ):
        if name.startswith("MALLOC_"):
            return name
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    return None


def plan(environ, platform_name=sys.platform, has_glibc=None):
    """(apply, reason): whether training and stabilising change malloc here, and why, in words for doctor and the log.
    ``has_glibc`` None: look at this process's C library."""
    if environ.get(SWITCH, "1") == "0":
        return False, f"off ({SWITCH}=0)"
    if not platform_name.startswith("linux"):
        return False, "not Linux: the system's malloc as it is"
    if not (glibc() is not None if has_glibc is None else has_glibc):
        return False, "no glibc: the C library's malloc as it is"
    setting = users_malloc_setting(environ)
    if setting:
        return False, f"your {setting} is in force: malloc left as you set it"
    return True, "training and the stabiliser's feature matching keep freed memory (mallopt: no mmap, one arena, 1 GiB top pad)"


def glibc():
    """The process's C library through ctypes if it is glibc (it has ``mallopt`` and
    ``gnu_get_libc_version``), else None."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version     # only glibc has it (musl has neither it nor these mallopt numbers)
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory():
    """Ask glibc to keep freed memory in this process, once (see the module's text); returns the decision
    in words. Later calls return the first decision and change nothing."""
    global _decision
    if _decision is not None:
        return _decision
    libc = glibc()
    apply, reason = plan(os.environ, has_glibc=libc is not None)
    if apply:
        refused = [number for number, value in SETTINGS if libc.mallopt(number, value) != 1]
        if refused:       # mallopt returns 1 on success; a C library that refuses one keeps what it had
            reason = f"glibc refused mallopt parameters {refused}; the others were set"
    _decision = reason
    return reason
