import base64
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from tinyvideo_mx.generation import media
from tinyvideo_mx.generation.export import export_generator, export_onnx
from tinyvideo_mx.generation.inference import OUTPUTS, latents, load_generator, run_generator
from tinyvideo_mx.generation.sampling import sample
from tinyvideo_mx.training import GanTraining

from support.helpers import tiny_config


@pytest.fixture
def server(tiny_server):
    """The base URL of the tiny model's server (conftest)."""
    return f"http://127.0.0.1:{tiny_server}"


def post(url, payload, raw=None, endpoint="/predictions"):
    """(status, content type, body) of a JSON POST; HTTP errors are answers too."""
    data = raw if raw is not None else json.dumps(payload).encode()
    request = urllib.request.Request(url + endpoint, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def test_ping(server):
    with urllib.request.urlopen(server + "/ping", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "Healthy"}


def test_responses_hold_what_local_sampling_gives_for_the_seed(server, tiny_model, tmp_path):
    status, ctype, body = post(server, {"seed": 5, "n": 3, "outputs": ["video", "mask"]})
    assert status == 200 and ctype == "application/octet-stream"
    arrays = np.load(io.BytesIO(body))
    G, config = load_generator(str(tiny_model / "run"))
    local = run_generator(G, latents(5, 3, config.nz))
    assert sorted(arrays.files) == ["mask", "video"]
    np.testing.assert_allclose(arrays["video"], local["video"], atol=1e-6)
    np.testing.assert_allclose(arrays["mask"], local["mask"], atol=1e-6)
    status, ctype, gif = post(server, {"seed": 5, "n": 3, "format": "gif"})
    assert status == 200 and ctype == "image/gif"
    (tmp_path / "served.gif").write_bytes(gif)
    sample(str(tiny_model / "run"), str(tmp_path / "local"), n=3, seed=5, scale=1)
    served, written = media.read_video(str(tmp_path / "served.gif")), media.read_video(str(tmp_path / "local" / "grid_video.gif"))
    assert served.shape == written.shape and np.abs(served.astype(int) - written).max() <= 1
    status, _, summary = post(server, {"seed": 5, "format": "json", "outputs": ["background"]})
    assert json.loads(summary)["background"]["shape"] == [1, 3, 16, 16]


@pytest.mark.parametrize("payload, raw, status, message", [
    (None, b"{not json", 400, "request body is not valid JSON"),
    (None, b"[1, 2]", 400, "request must be a JSON object"),
    ({"seed": 1, "colour": "red"}, None, 400, "unknown field(s): colour; allowed: seed, n, outputs, format, fps, scale, images"),
    ({"n": "two"}, None, 400, "field 'n' must be int, got str"),
    ({"seed": True}, None, 400, "field 'seed' must be int, got bool"),
    ({"n": 5}, None, 413, "at most 4 clips per request, asked for 5"),
    ({"n": 0}, None, 400, "n must be at least 1"),
    ({"format": "avi"}, None, 400, "format must be one of npz, json, gif, mp4, got 'avi'"),
    ({"outputs": ["depth"]}, None, 400, "outputs must be a non-empty list of video, foreground, mask, background; got ['depth']"),
    ({"images": ["aGk="]}, None, 400, "this model is unconditional: 'images' is not accepted"),
])
def test_bad_requests_get_a_clear_json_error(server, payload, raw, status, message):
    got_status, ctype, body = post(server, payload, raw)
    assert (got_status, ctype) == (status, "application/json")
    error = json.loads(body)["error"]
    assert error.startswith(message) if message.endswith("JSON") else error == message


def test_concurrent_clients_all_get_their_own_correct_answer(server, tiny_model):
    G, config = load_generator(str(tiny_model / "run"))
    expected = {seed: run_generator(G, latents(seed, 1, config.nz))["video"] for seed in range(8)}
    failures = []

    def client(k):
        for i in range(25):
            seed = (k + i) % 8
            status, _, body = post(server, {"seed": seed})
            video = np.load(io.BytesIO(body))["video"] if status == 200 else None
            if video is None or not np.allclose(video, expected[seed], atol=1e-6):
                failures.append((k, i, status))
    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert failures == []


@pytest.fixture(scope="module")
def tiny_demo_kind_model(tmp_path_factory):
    """A run with the demo preset's generator (resize-convolutions, a weight average), its mask started low
    (--mask-bias) and its background coarsened (--background-size): every initialiser and constant the
    exported graph may carry."""
    root = tmp_path_factory.mktemp("serve-demo")
    config = tiny_config(iterations=2, sample_every=0, checkpoint_every=2, upsampling="resize", g_ema=0.9,
                         mask_bias=-2.0, background_size=4)
    GanTraining(config, str(root / "run"), progress=False).run()
    export_generator(str(root / "run"), str(root / "export" / "generator"))
    return root


@pytest.mark.parametrize("kind", ["tiny_model", "tiny_demo_kind_model"])
def test_onnx_export_runs_in_onnxruntime(kind, request, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    model = request.getfixturevalue(kind)
    prefix = str(model / "export" / "generator")
    export_onnx(prefix, str(tmp_path / "g.onnx"), batch=2)
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["data"]
    assert [o.name for o in session.get_outputs()] == ["video", "foreground", "mask", "background"]
    z = latents(3, 2, 100)
    outputs = session.run(None, {"data": z})
    G, _ = load_generator(str(model / "run"))
    local = run_generator(G, z)
    assert len(outputs) == 4
    for name, out in zip(OUTPUTS, outputs):
        np.testing.assert_allclose(out, local[name], atol=1e-5, err_msg=name)


def free_port(avoid=(), low=18000, high=30000):
    """A free loopback port below 30000 (MMS 1.1.11 rejects high ephemeral ports, "Invalid port number"),
    not one of ``avoid`` (ports already handed out: nothing binds them until the server starts)."""
    import random
    candidates = [port for port in range(low, high) if port not in avoid]
    for port in random.Random(os.getpid()).sample(candidates, 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def processes_mentioning(text):
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
    return found


@pytest.mark.skipif(shutil.which("java") is None or shutil.which("multi-model-server") is None,
                    reason="needs Java and the 'serve' extra")
def test_mxnet_model_server_end_to_end(tiny_model, tmp_path):
    from tinyvideo_mx.generation.export import export_mar
    mar = export_mar(str(tiny_model / "export" / "generator"), str(tmp_path / "store"))
    inference = free_port()
    management = free_port(avoid=(inference,))
    (tmp_path / "config.properties").write_text(
        f"inference_address=http://127.0.0.1:{inference}\nmanagement_address=http://127.0.0.1:{management}\n"
        f"default_workers_per_model=1\nmodel_store={tmp_path / 'store'}\n")
    # MMS keeps its PID file (TMPDIR), worker socket and unpacked models (TEMP -> java.io.tmpdir) in
    # the temp folder, and refuses to start beside another instance's: give it its own.
    env = dict(os.environ, TMPDIR=str(tmp_path), TEMP=str(tmp_path))
    proc = subprocess.Popen(["multi-model-server", "--start", "--foreground", "--mms-config", str(tmp_path / "config.properties"),
                             "--model-store", str(tmp_path / "store"), "--models", f"vgan={os.path.basename(mar)}"],
                            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=open(tmp_path / "server.out", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{inference}"
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, "model server exited at start (see logs/ in the test folder)"
            try:
                status, _, body = post(url, {"seed": 5, "n": 2}, endpoint="/predictions/vgan")
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.time() < deadline, "model server did not answer within 120 s"
            time.sleep(1)
        G, config = load_generator(str(tiny_model / "run"))
        expected = run_generator(G, latents(5, 2, config.nz))["video"]
        np.testing.assert_allclose(np.load(io.BytesIO(body))["video"], expected, atol=1e-6)
        status, _, body = post(url, {"n": 99}, endpoint="/predictions/vgan")
        assert status == 413
    finally:
        os.killpg(proc.pid, signal.SIGKILL)       # the JVM and every process of its session ...
        proc.wait(timeout=30)
        for pid in processes_mentioning(str(tmp_path)):   # ... and a worker that escaped the group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
    assert processes_mentioning(str(tmp_path)) == []


def test_the_conditional_generator_is_servable_too(tmp_path):
    import cv2

    from tinyvideo_mx.data.image_input import load_image
    from tinyvideo_mx.serving.contract import SamplingService
    cfg = tiny_config(model="conditional", ngf=4, ndf=4, iterations=1, sample_every=0, checkpoint_every=1)
    GanTraining(cfg, str(tmp_path / "run"), progress=False).run()
    export_generator(str(tmp_path / "run"), str(tmp_path / "cg"))
    cv2.imwrite(str(tmp_path / "x.png"), np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    service = SamplingService(str(tmp_path / "cg"))
    image = base64.b64encode((tmp_path / "x.png").read_bytes()).decode()
    status, _, body = service.respond(json.dumps({"images": [image], "outputs": ["video", "background"]}).encode())
    assert status == 200
    G, config = load_generator(str(tmp_path / "run"))
    local = run_generator(G, [load_image(str(tmp_path / "x.png"), config.size)[None]])
    np.testing.assert_allclose(np.load(io.BytesIO(body))["video"], local["video"], atol=1e-6)
    status, _, body = service.respond(b'{"seed": 1}')
    assert status == 400 and json.loads(body)["error"].startswith("this model predicts the future of images")
    status, _, body = service.respond(json.dumps({"images": ["bm90IGFuIGltYWdl"]}).encode())
    assert status == 400 and json.loads(body) == {"error": "images[0] is not a readable image"}
    # a small upload whose header claims 12000 x 12000: refused from the header (413), never decoded
    bomb = bytearray(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    sof = bomb.find(b"\xff\xc0")
    bomb[sof + 5:sof + 9] = struct.pack(">HH", 12000, 12000)
    status, _, body = service.respond(json.dumps({"images": [base64.b64encode(bytes(bomb)).decode()]}).encode())
    assert status == 413 and json.loads(body) == {
        "error": "images[0]: image header claims 12000x12000 pixels; the limit is 40,000,000 pixels; refused before "
                 "decoding"}


def test_full_width_server_answers_any_batch_size(tmp_path):
    """n = 16, then 1, then 3 on the full-size generator (a plain SymbolBlock fails on the second size;
    smaller generators do not trigger the bug)."""
    from tinyvideo_mx.serving.contract import SamplingService
    cfg = tiny_config(ngf=64, ndf=8, frames=32, size=64, batch_size=2)
    GanTraining(cfg, str(tmp_path / "run"), progress=False).save_checkpoint()
    export_generator(str(tmp_path / "run"), str(tmp_path / "g"))
    service = SamplingService(str(tmp_path / "g"), max_n=16)
    assert service.buckets == [1, 4, 16]
    results = {}
    for n in (16, 1, 3):
        status, _, body = service.respond(json.dumps({"seed": 2, "n": n}).encode())
        assert status == 200
        results[n] = np.load(io.BytesIO(body))["video"]
    np.testing.assert_allclose(results[1][0], results[16][0], atol=1e-5)
    np.testing.assert_allclose(results[3], results[16][:3], atol=1e-5)
