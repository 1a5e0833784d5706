"""Light HTTP server throughput and latency for the full-size generator (32x64x64 clips), CPU.

    python bench/serve.py [--requests 40] [--clients 4]

Starts ``tinyvideo-mx serve``'s server on 127.0.0.1 in this process, sends npz requests from
concurrent clients over loopback and prints requests/s and p50/p99 latency for n=1 and n=16.
(The generator is freshly initialised: speed does not depend on training.)
"""
import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def exported_generator(folder):
    from bench.train_step import RandomClips
    from tinyvideo_mx.config import make_config
    from tinyvideo_mx.export import export_generator
    from tinyvideo_mx.training import GanTraining
    run = GanTraining(make_config("original", iterations=1), os.path.join(folder, "run"), progress=False, iterator=RandomClips(1))
    run.save_checkpoint()
    prefix = os.path.join(folder, "generator")
    export_generator(os.path.join(folder, "run"), prefix)
    return prefix


def load(url, n, requests, clients):
    latencies, errors, lock = [], [], threading.Lock()
    per_client = requests // clients

    def client(k):
        for i in range(per_client):
            body = json.dumps({"seed": k * 1000 + i, "n": n}).encode()
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=600) as r:
                    r.read()
            except Exception as e:            # report, do not hide: a benchmark of failures is no benchmark
                with lock:
                    errors.append(repr(e))
                continue
            with lock:
                latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return len(latencies) / wall, np.percentile(latencies, 50), np.percentile(latencies, 99), len(latencies)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    from tinyvideo_mx.server import make_server
    with tempfile.TemporaryDirectory() as folder:
        prefix = exported_generator(folder)
        server = make_server(prefix, port=0, max_n=16)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/predictions"
        load(url, 1, args.clients, args.clients)          # warm-up (graph binding per batch size)
        load(url, 16, args.clients, args.clients)
        print(f"CPU ({os.cpu_count()} cores); full-size generator (z 100 -> 3x32x64x64), npz responses; "
              f"{args.clients} concurrent clients on loopback")
        print(f"{'n':>3} {'requests':>9} {'req/s':>7} {'clips/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for n, count in ((1, args.requests), (16, max(args.clients, args.requests // 4))):
            rps, p50, p99, done = load(url, n, count, args.clients)
            print(f"{n:>3} {done:>9} {rps:>7.2f} {rps * n:>8.1f} {p50 * 1000:>8.0f} {p99 * 1000:>8.0f}", flush=True)
        server.shutdown()


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    main()
