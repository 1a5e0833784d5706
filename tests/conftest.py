"""Fixtures every test file may use. Helpers live in ``support`` (tests/support), not here."""
import os

import pytest

import tinyvideo_mx  # noqa: F401  (before any test module loads MXNet: it sets MXNet's thread count, as the CLI does)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """The synthetic dataset cache lives in the test session's temporary folder."""
    os.environ["TINYVIDEO_MX_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny model trained 2 iterations (``root / "run"``: one checkpoint, no sample grids) and its export
    (``root / "export" / "generator"``), for the tests that only need *a* trained model and leave it as
    it is; a test that changes a run trains its own."""
    from tinyvideo_mx.generation.export import export_generator
    from tinyvideo_mx.training import GanTraining

    from support.helpers import tiny_config
    root = tmp_path_factory.mktemp("tiny-model")
    GanTraining(tiny_config(iterations=2, sample_every=0, checkpoint_every=2), str(root / "run"), progress=False).run()
    export_generator(str(root / "run"), str(root / "export" / "generator"))
    return root


@pytest.fixture(scope="session")
def tiny_server(tiny_model):
    """``tiny_model``'s export served on a free loopback port (at most 4 clips per request, a 2 s receive
    deadline); gives the port. Stopped, its sockets closed, when the session ends."""
    import threading

    from tinyvideo_mx.serving.http import make_server
    server = make_server(str(tiny_model / "export" / "generator"), port=0, max_n=4, timeout=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(10)
