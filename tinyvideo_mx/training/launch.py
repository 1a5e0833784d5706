"""Start the processes of a ``dist_sync`` run: one scheduler, S parameter servers, W workers.

MXNet's kvstore is ps-lite; its processes find each other through environment variables (``DMLC_*``),
which is all the dmlc tracker sets. The tracker that ships in the mxnet wheel (``mxnet/tools/launch.py``)
fails on Python >= 3.9 (``Thread.isAlive``) and binds to the first non-loopback interface, and it does not
stop the other processes when one fails. This launcher sets the same variables and

* ``launch_local``: runs everything on this machine on 127.0.0.1 (tests, a multi-socket box), streams
  the workers' output, and stops every process it started as soon as one worker fails;
* ``cluster_commands``: prints one shell command per process for ssh / a cluster scheduler.

Servers and the scheduler are ``python -c "import tinyvideo_mx, mxnet"``: importing MXNet with
DMLC_ROLE=server or scheduler runs that role's loop and exits when the workers are done (tinyvideo_mx
first, as everywhere: on Python 3.12 it restores the numpy aliases MXNet needs, compat.py).
"""
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

from ..errors import FileProblem, TinyVideoError
from ..fsutil import read_regular_file

MAX_HOSTS_BYTES = 2 ** 20          # a hosts file lists machines: tens of thousands of names fit
ROLE_PROGRAM = [sys.executable, "-c", "import tinyvideo_mx, mxnet"]


class LaunchError(TinyVideoError):
    pass


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def role_environment(role, scheduler_host, port, workers, servers, node_host=None):
    env = {"DMLC_ROLE": role, "DMLC_PS_ROOT_URI": scheduler_host, "DMLC_PS_ROOT_PORT": str(port),
           "DMLC_NUM_WORKER": str(workers), "DMLC_NUM_SERVER": str(servers)}
    if node_host:
        env["DMLC_NODE_HOST"] = node_host    # the address this process announces (ps-lite's own choice is eth0)
    return env


def plan(command, workers, servers, scheduler_host, port, node_hosts=None):
    """[(role, host, env, argv)] for the scheduler, the servers, then the workers."""
    if workers < 1 or servers < 1:
        raise LaunchError(f"need at least one worker and one server, got {workers} and {servers}")
    if not command:
        raise LaunchError("no worker command given (put it after --, e.g. -- tinyvideo-mx train --kvstore dist_sync)")
    hosts = node_hosts or [scheduler_host]
    roles = [("scheduler", scheduler_host)]
    roles += [("server", hosts[i % len(hosts)]) for i in range(servers)]
    roles += [("worker", hosts[i % len(hosts)]) for i in range(workers)]
    return [(role, host, role_environment(role, scheduler_host, port, workers, servers, host),
             list(command) if role == "worker" else list(ROLE_PROGRAM)) for role, host in roles]


def read_hosts(path):
    """The hosts ``path`` lists, one per line (blank lines and lines starting with # skipped); a
    FileProblem naming the file if it is not a regular file (a FIFO would block the reader), too large,
    not text, or lists no host."""
    raw = read_regular_file(path, MAX_HOSTS_BYTES, "hosts file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FileProblem(path, "is not a UTF-8 text file of host names") from None
    names = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not names:
        raise FileProblem(path, "no hosts listed")
    return names


def cluster_commands(command, hosts, workers, servers, port=9091):
    """Shell commands, one per process, to run through ssh on ``hosts`` (the first runs the scheduler).
    Every host needs the same environment (this package installed, the data at the same path)."""
    lines = []
    for role, host, env, argv in plan(command, workers, servers, hosts[0], port, hosts):
        if argv == ROLE_PROGRAM:
            argv = ["python3", "-c", "import tinyvideo_mx, mxnet"]
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        remote = f"{assignments} {' '.join(shlex.quote(a) for a in argv)}"
        lines.append(f"ssh {shlex.quote(host)} {shlex.quote(remote)} &   # {role}")
    lines.append("wait")
    return lines


def launch_local(command, workers=2, servers=1, timeout=None, port=None, stdout=None, stderr=None, started=None):
    """Run a distributed job on 127.0.0.1. Returns 0 when every worker succeeded, else the first failing
    worker's exit status; every process started is stopped before this returns (``started``, a list,
    receives the (role, Popen) pairs)."""
    port = port or free_port()
    processes = started if started is not None else []
    try:
        for role, _, env, argv in plan(command, workers, servers, "127.0.0.1", port):
            processes.append((role, subprocess.Popen(
                argv, env=dict(os.environ, **env, DMLC_INTERFACE="lo"), start_new_session=True,
                stdout=stdout if role == "worker" else subprocess.DEVNULL,
                stderr=stderr if role == "worker" else subprocess.DEVNULL)))
        workers_ = [p for role, p in processes if role == "worker"]
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            codes = [p.poll() for p in workers_]
            failed = [c for c in codes if c not in (None, 0)]
            if failed:
                return failed[0]
            if all(c == 0 for c in codes):
                break
            if deadline and time.monotonic() > deadline:
                raise LaunchError(f"distributed job did not finish within {timeout} s; stopped all processes")
            time.sleep(0.1)
        # Servers and scheduler end on their own once the workers have finalised the kvstore.
        for role, p in processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        return 0
    finally:
        stop(p for _, p in processes)


def stop(processes):
    """Terminate (then kill) each process group that is still running."""
    processes = [p for p in processes if p.poll() is None]
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        for p in processes:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + grace
        while time.monotonic() < end and any(p.poll() is None for p in processes):
            time.sleep(0.05)
        processes = [p for p in processes if p.poll() is None]
        if not processes:
            return
