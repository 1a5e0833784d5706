"""Serving an exported generator: one request/response contract, shared by the light HTTP server
(``tinyvideo-mx serve``) and the MXNet Model Server handler (``mms_handler.py``).

Request (JSON object; every field optional except ``images`` for a conditional model):

    {"seed": 0, "n": 1, "outputs": ["video"], "format": "npz", "fps": 25, "scale": 1,
     "images": ["<base64 image file>", ...]}

* unconditional model: the clips are rows ``0..n-1`` of ``default_rng(seed).standard_normal((n, nz))``,
  exactly as ``tinyvideo-mx sample --seed`` draws them, so a response holds the same numbers as local
  sampling with that seed;
* conditional model: one clip per image (``n`` is ignored);
* ``format``: ``npz`` (one float32 array per requested output), ``json`` (shape/mean/min/max per output),
  ``gif`` / ``mp4`` (the grid of the first requested output, encoded exactly as ``sample`` writes
  ``grid_<output>.gif``).

Errors are ``RequestError``s with an HTTP status (400 bad request, 413 too many clips or an image over
the pixel limit, 503 too many requests waiting) and a message; every error body is ``{"error": message}``.
"""
import base64
import io
import json
import os
import tempfile
import warnings
from concurrent.futures import TimeoutError as FutureTimeout

import mxnet as mx
import numpy as np

from ..config import TrainConfig
from ..data.image_input import ImageError, ImageTooLarge, check_pixels, decode_image
from ..errors import FileProblem, TinyVideoError
from ..generation import media
from ..generation.inference import OUTPUT_RANGES, OUTPUTS, generator_inputs, run_generator
from ..runtime import kernels
from .batching import Busy, InferenceQueue

FORMATS = {"npz": "application/octet-stream", "json": "application/json", "gif": "image/gif", "mp4": "video/mp4"}
FIELDS = {"seed": int, "n": int, "outputs": list, "format": str, "fps": (int, float), "scale": int, "images": list}


class RequestError(TinyVideoError):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def import_generator(prefix, ctx=None):
    """The exported generator as a ``SymbolBlock`` returning (video, foreground, mask, background)."""
    with open(prefix + "-meta.json") as f:
        names = json.load(f)["inputs"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "Cannot decide type for the following arguments": harmless
        return mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", names, prefix + "-0000.params",
                                            ctx=ctx or mx.cpu())


class SamplingService:
    """A loaded exported generator answering requests; safe to call from many threads."""

    def __init__(self, prefix, max_n=16, ctx=None, generate_timeout=None):
        with open(prefix + "-meta.json") as f:
            self.meta = json.load(f)
        self.prefix, self.ctx, self.max_n = prefix, ctx, max_n
        self.generate_timeout = generate_timeout      # s a request may wait for its forward (None: no limit)
        self.config = TrainConfig.from_dict(self.meta["config"])
        # oneDNN's kernels of the run (a demo model's are AVX2's: runtime/kernels.py), before this process's first
        # network, so responses hold the numbers ``sample`` computes for the seed on any CPU
        kernels.use(self.config.kernels)
        # Requests are padded to a bucket size and each bucket has its own network (own weight
        # arrays): oneDNN reorders weights in place for one inference batch size and then fails at
        # another (see inference.run_generator). Buckets 1, 4, 16, ... up to max_n.
        self.buckets = sorted({min(4 ** k, max_n) for k in range(8) if 4 ** (k - 1) < max_n} | {max_n})
        self._nets = {}
        # Every forward runs on one long-lived thread that batches concurrent requests (batching.py).
        self.inference = InferenceQueue(self._run_batch, capacity=max_n)

    def _net(self, bucket):
        if bucket not in self._nets:
            self._nets[bucket] = import_generator(self.prefix, self.ctx)
        return self._nets[bucket]

    # -- parsing ----------------------------------------------------------------------------------
    def parse(self, body):
        try:
            request = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError) as e:
            raise RequestError(400, f"request body is not valid JSON ({e})") from None
        except RecursionError:
            raise RequestError(400, "request body is not valid JSON (nested too deeply)") from None
        if not isinstance(request, dict):
            raise RequestError(400, "request must be a JSON object")
        unknown = sorted(set(request) - set(FIELDS))
        if unknown:
            raise RequestError(400, f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
        for key, kind in FIELDS.items():
            if key in request and (not isinstance(request[key], kind) or isinstance(request[key], bool)):
                names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
                raise RequestError(400, f"field '{key}' must be {names}, got {type(request[key]).__name__}")
        out = {"seed": request.get("seed", 0), "n": request.get("n", 1), "outputs": request.get("outputs", ["video"]),
               "format": request.get("format", "npz"), "fps": request.get("fps", media.DEFAULT_FPS),
               "scale": request.get("scale", 1), "images": request.get("images")}
        if out["format"] not in FORMATS:
            raise RequestError(400, f"format must be one of {', '.join(FORMATS)}, got {out['format']!r}")
        bad = [o for o in out["outputs"] if o not in OUTPUTS]
        if bad or not out["outputs"]:
            raise RequestError(400, f"outputs must be a non-empty list of {', '.join(OUTPUTS)}; got {out['outputs']}")
        if not 0 <= out["seed"] < 2 ** 63:
            raise RequestError(400, "seed must be a non-negative 63-bit integer")
        if not 1 <= out["scale"] <= 8 or not 1 <= out["fps"] <= 100:
            raise RequestError(400, "scale must be 1..8 and fps 1..100")
        conditional = self.config.is_conditional
        count = len(out["images"] or []) if conditional else out["n"]
        if conditional and not out["images"]:
            raise RequestError(400, "this model predicts the future of images: send 'images' (base64 image files)")
        if not conditional and out["images"] is not None:
            raise RequestError(400, "this model is unconditional: 'images' is not accepted")
        if count < 1:
            raise RequestError(400, "n must be at least 1")
        if count > self.max_n:
            raise RequestError(413, f"at most {self.max_n} clips per request, asked for {count}")
        return out

    # -- generating -------------------------------------------------------------------------------
    def inputs(self, request):
        """The generator's input arrays for a parsed request."""
        if self.config.is_conditional:
            arrays = []
            for i, text in enumerate(request["images"]):
                try:
                    data = base64.b64decode(text, validate=True)
                except (ValueError, TypeError):
                    raise RequestError(400, f"images[{i}] is not base64") from None
                try:
                    check_pixels(data, f"images[{i}]")      # measured from its header, before decoding
                except ImageTooLarge as e:
                    raise RequestError(413, str(e)) from None
                except FileProblem:
                    raise RequestError(400, f"images[{i}] is not a readable image") from None
                try:
                    arrays.append(decode_image(data, self.config.size))
                except ImageError:
                    raise RequestError(400, f"images[{i}] is not a readable image") from None
            return generator_inputs(self.config, request["seed"], len(arrays), np.stack(arrays))
        return generator_inputs(self.config, request["seed"], request["n"])

    def generate(self, request):
        """{output name: float32 array} for a parsed request. Inputs (images included) are made on the
        caller's thread; the forward joins the inference thread's next batch."""
        try:
            arrays = self.inference.submit(self.inputs(request)).result(timeout=self.generate_timeout)
        except Busy as e:
            raise RequestError(503, f"server busy: {e}") from None
        except FutureTimeout:
            raise RequestError(503, f"server busy: the generation did not finish within {self.generate_timeout:g} s; "
                                    f"try again shortly") from None
        return {k: arrays[k] for k in request["outputs"]}

    def _run_batch(self, inputs):
        """The rows in forwards of bucket sizes, largest first, so that no row is padding: 6 rows run as
        4 + 1 + 1, not as a padded 16 (on CPU a row costs about the same at any batch size, so padding is
        pure waste; measured in bench/serve.py). Runs on the inference thread."""
        parts, start, total = [], 0, len(inputs[0])
        while start < total:
            bucket = max(b for b in self.buckets if b <= total - start)
            piece = [a[start:start + bucket] for a in inputs]
            parts.append(run_generator(self._net(bucket), piece, self.ctx, batch=bucket))
            start += bucket
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def close(self):
        self.inference.close()

    def respond(self, body):
        """(HTTP status, content type, response bytes) for a raw request body."""
        try:
            request = self.parse(body)
            arrays = self.generate(request)
        except RequestError as e:
            return e.status, "application/json", json.dumps({"error": e.message}).encode()
        return 200, FORMATS[request["format"]], encode(arrays, request)


def encode(arrays, request):
    fmt = request["format"]
    if fmt == "npz":
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()
    if fmt == "json":
        return json.dumps({k: {"shape": list(v.shape), "mean": float(v.mean()), "min": float(v.min()),
                               "max": float(v.max())} for k, v in arrays.items()}).encode()
    name = request["outputs"][0]
    clips = arrays[name] if name != "background" else arrays[name][:, :, None]
    frames = media.grid([media.upscale(media.to_frames(c, OUTPUT_RANGES[name]), request["scale"]) for c in clips])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"grid.{fmt}")
        (media.write_gif if fmt == "gif" else media.write_mp4)(path, frames, request["fps"])
        with open(path, "rb") as f:
            return f.read()
