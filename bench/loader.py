"""Input pipeline speed: clips/s that StripIter decodes and prepares (128-px JPEG strips -> 3x32x64x64 in
[-1, 1]) with 1, 2 and 4 decoding threads, next to what training consumes (bench/train_step.py).

    python bench/loader.py [--clips 128] [--batch 16] [--batches 12]

Uses the built-in synthetic dataset (written once into a temporary cache).
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def measure(paths, workers, batch, batches):
    """clips/s of StripIter with ``workers`` decoding threads, after one warm-up batch."""
    from tinyvideo_mx.data.iterator import StripIter
    it = StripIter(paths, batch, decode_threads=workers, seed=workers)
    it.next()                                       # warm-up (thread start, first decodes)
    start = time.perf_counter()
    for _ in range(batches):
        try:
            it.next().data[0].wait_to_read()
        except StopIteration:
            it.reset()
    seconds = time.perf_counter() - start
    it.close()
    return batches * batch / seconds


def synthetic_paths(clips):
    from tinyvideo_mx.data import read_list, synthetic
    folder = tempfile.mkdtemp(prefix="loader-bench-")
    return read_list(synthetic.ensure_dataset(folder, clips=clips, frames=32, frame_height=128))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batches", type=int, default=12)
    args = parser.parse_args()
    import cv2
    paths = synthetic_paths(args.clips)
    print(f"CPU ({os.cpu_count()} cores), OpenCV {cv2.__version__} (cv2 threads {cv2.getNumThreads()}); "
          f"strips 128x4096 JPEG -> 3x32x64x64; batch {args.batch}, prefetch 2")
    print(f"{'threads':>7} {'clips/s':>8} {'ms/batch':>9}")
    for workers in (1, 2, 4):
        rate = measure(paths, workers, args.batch, args.batches)
        print(f"{workers:>7} {rate:>8.1f} {1000 * args.batch / rate:>9.1f}", flush=True)


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    main()
