"""One long-lived inference thread, fed by a bounded queue, that batches concurrent requests.

Why one thread: MXNet/oneDNN keep per-thread state that is never freed, so inference on a new thread per
connection grows a server by ~5 MB per request (100 calls on one thread: +0 MB; on 100 fresh threads:
+494 MB). Here every forward runs on the same thread, whatever the number of connections.

Why batching: while one forward runs, requests queue up; the next round takes as many of them as fit in
``capacity`` rows (first come, first served; a request that does not fit waits for the next round) and
hands them to ``run_batch`` together, which on a GPU turns many small forwards into one large one. On
this CPU a row costs about the same at any batch size, so there the gain is fewer rounds, not fewer
FLOPs (bench/serve.py). Rows are independent in inference (BatchNorm uses its running statistics), so
each client gets exactly the rows it would get alone.
"""
import queue
import threading
from concurrent.futures import Future

import numpy as np

from ..errors import TinyVideoError


class Busy(TinyVideoError):
    """The queue is full: the caller should answer 503."""


class InferenceQueue:
    """``submit(inputs)`` -> Future of {output: rows}; ``run_batch(inputs)`` runs on one thread."""

    def __init__(self, run_batch, capacity, max_waiting=64):
        self.run_batch, self.capacity = run_batch, capacity
        self._queue = queue.Queue(max_waiting)
        self._carry = None                 # a request taken from the queue that did not fit the last batch
        self._thread = None
        self._start_lock = threading.Lock()
        self.batches = 0                   # forwards run (for tests and benchmarks)

    def submit(self, inputs):
        """Queue one request's input arrays (same first axis); raises Busy when too many wait."""
        rows = len(inputs[0])
        if rows > self.capacity:
            raise ValueError(f"{rows} rows exceed the batch capacity {self.capacity}")
        self._ensure_thread()
        future = Future()
        try:
            self._queue.put_nowait((inputs, future))
        except queue.Full:
            raise Busy(f"{self._queue.maxsize} requests are already waiting; try again shortly") from None
        return future

    def close(self, timeout=10):
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def _ensure_thread(self):
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="inference", daemon=True)
                self._thread.start()

    def _next_batch(self):
        """Block for the first request, then take queued ones while they fit. None means stop."""
        first = self._carry if self._carry is not None else self._queue.get()
        self._carry = None
        if first is None:
            return None
        batch, rows = [first], len(first[0][0])
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None or rows + len(item[0][0]) > self.capacity:
                self._carry = item         # a stop request, or the first of the next batch
                break
            batch.append(item)
            rows += len(item[0][0])
        return batch

    def _loop(self):
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            live = [(inputs, future) for inputs, future in batch if future.set_running_or_notify_cancel()]
            if not live:
                continue
            combined = [np.concatenate([inputs[k] for inputs, _ in live]) for k in range(len(live[0][0]))]
            try:
                outputs = self.run_batch(combined)
            except Exception as e:         # handed to every waiting caller; the thread lives on
                for _, future in live:
                    future.set_exception(e)
                continue
            self.batches += 1
            start = 0
            for inputs, future in live:
                rows = len(inputs[0])
                future.set_result({k: v[start:start + rows] for k, v in outputs.items()})
                start += rows
