"""Scalars in TensorBoard's event format (tensorboardX) and as JSON lines (for scripts).

A failed write (a full disk) is reported once and skipped: losing log lines never stops training."""
import contextlib
import json
import logging
import os

log = logging.getLogger(__name__)


class ScalarLog:
    def __init__(self, run_dir, start=0):
        from tensorboardX import SummaryWriter
        # purge_step: after a resume, TensorBoard drops the events the crashed run wrote past it.
        self.writer = SummaryWriter(logdir=os.path.join(run_dir, "tensorboard"), purge_step=start or None)
        self.jsonl = open(os.path.join(run_dir, "metrics.jsonl"), "a")
        self.failed = False

    @contextlib.contextmanager
    def _reported_once(self, what, step):
        """A failed write of ``what`` is logged the first time any write fails, then skipped silently."""
        try:
            yield
        except OSError as e:
            if not self.failed:
                log.error("could not write the %s of iteration %d (%s); training goes on", what, step, e.strerror or e)
            self.failed = True

    def write(self, step, values):
        with self._reported_once("logs", step):
            for key, value in values.items():
                self.writer.add_scalar(f"train/{key}", value, step)
            self.jsonl.write(json.dumps(dict(values, iteration=step)) + "\n")
            self.jsonl.flush()

    def images(self, step, grids):
        """{name: (H, W, 3) uint8 image}: shown under TensorBoard's Images tab as samples/<name>."""
        with self._reported_once("sample images", step):
            for name, image in grids.items():
                self.writer.add_image(f"samples/{name}", image, step, dataformats="HWC")

    def close(self):
        try:
            self.writer.close()
            self.jsonl.close()
        except OSError as e:
            log.error("could not close the logs (%s)", e.strerror or e)
