"""`tinyvideo-mx serve` under load, on 127.0.0.1: requests/s, p50/p99 latency and the server's memory.

    python bench/serve.py                                   # this checkout
    git worktree add /tmp/before COMMIT && python bench/serve.py --before /tmp/before   # + an older server

The server runs as its own process (`python -m tinyvideo_mx.cli serve`, from this checkout or from
--before), so its resident memory is read from /proc and is its own. Full-size generator (z 100 ->
3x32x64x64, freshly initialised: speed does not depend on training), npz responses. Rows: n = 1 and
n = 16 clips per request, from 1 and 16 concurrent clients; then a soak of --soak requests (mixed good
and bad, one new connection each, 16 clients) and the server's RSS before and after it. Every loop is
bounded in count; every request has a timeout.
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import numpy as np
from machine import SHELL_ENVIRONMENT  # bench/ is the script's folder; before anything imports tinyvideo_mx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]


def exported_generator(folder):
    from train_step import RandomClips

    from tinyvideo_mx.config import make_config
    from tinyvideo_mx.generation.export import export_generator
    from tinyvideo_mx.training import GanTraining
    run = GanTraining(make_config("original", iterations=1), os.path.join(folder, "run"), progress=False,
                      iterator=RandomClips(1))
    run.save_checkpoint()
    prefix = os.path.join(folder, "generator")
    export_generator(os.path.join(folder, "run"), prefix)
    return prefix


def start_server(checkout, prefix, max_n):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(SHELL_ENVIRONMENT, PYTHONPATH=checkout)
    process = subprocess.Popen([sys.executable, "-m", "tinyvideo_mx.cli", "serve", prefix, "--port", str(port),
                                "--max-n", str(max_n)], cwd=checkout, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/ping", timeout=2).read()
            return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"the server from {checkout} did not start")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def post(url, body):
    request = urllib.request.Request(url + "/predictions", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def load(url, bodies, clients):
    """Send ``bodies`` from ``clients`` threads; (requests/s, p50 s, p99 s, statuses)."""
    latencies, statuses, lock = [], [], threading.Lock()

    def client(k):
        for body in bodies[k::clients]:
            start = time.perf_counter()
            status = post(url, body)
            with lock:
                latencies.append(time.perf_counter() - start)
                statuses.append(status)
    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return len(latencies) / wall, np.percentile(latencies, 50), np.percentile(latencies, 99), statuses


def measure(name, checkout, prefix, args):
    process, url = start_server(checkout, prefix, 16)
    rows = []
    try:
        for n in (1, 16):
            load(url, [b'{"seed": 0, "n": %d}' % n] * 2, 1)                      # warm-up per bucket
            for clients in (1, 16):
                count = args.requests if n == 1 else max(clients, args.requests // 4)
                bodies = [b'{"seed": %d, "n": %d}' % (i, n) for i in range(count)]
                rps, p50, p99, statuses = load(url, bodies, clients)
                assert set(statuses) == {200}, statuses
                rows.append((name, n, clients, count, rps, p50, p99))
                print(f"  {name}: n={n} clients={clients}: {rps:.2f} req/s", flush=True)
        before = rss_mb(process.pid)
        good_and_bad = [b'{"seed": 1}', b"{bad json", b'{"n": 99}', b'{"seed": 2, "format": "json"}']
        load(url, [good_and_bad[i % 4] for i in range(args.soak)], 16)
        after = rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(30)
    return rows, before, after


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=64, help="requests per n=1 row (n=16 rows: a quarter)")
    parser.add_argument("--soak", type=int, default=2000, help="requests of the memory soak")
    parser.add_argument("--before", metavar="CHECKOUT", help="also measure the server of an older checkout")
    args = parser.parse_args()
    from machine import describe

    import tinyvideo_mx  # noqa: F401
    print(describe())
    print("full-size generator (z 100 -> 3x32x64x64), npz responses, server --max-n 16, clients on 127.0.0.1")
    servers = [("now", os.path.dirname(HERE))] + ([("before", os.path.abspath(args.before))] if args.before else [])
    table, memory = [], {}
    with tempfile.TemporaryDirectory() as folder:
        prefix = exported_generator(folder)
        for name, checkout in servers:
            rows, before, after = measure(name, checkout, prefix, args)
            table += rows
            memory[name] = (before, after)
    print(f"\n{'server':>7} {'n':>3} {'clients':>7} {'requests':>8} {'req/s':>7} {'clips/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, n, clients, count, rps, p50, p99 in table:
        print(f"{name:>7} {n:>3} {clients:>7} {count:>8} {rps:>7.2f} {rps * n:>8.1f} {p50 * 1000:>8.0f} {p99 * 1000:>8.0f}")
    for name, (before, after) in memory.items():
        print(f"{name:>7}: RSS {before:.0f} MB before and {after:.0f} MB after {args.soak} mixed requests "
              f"(16 clients, a new connection each): {after - before:+.0f} MB")


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    main()
