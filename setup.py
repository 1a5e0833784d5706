"""tinyvideo-mx: VGAN (Generating Videos with Scene Dynamics) in MXNet Gluon.

Python 3.11 and 3.12. Every pin below is one that works together on both (see docs/platform.md):
mxnet 1.9.1 is the last MXNet release; it requires numpy < 2 and uses numpy aliases that numpy 1.24
removed (``np.bool``...), which tinyvideo_mx/runtime/compat.py restores before MXNet loads. So numpy is
1.23.5 on 3.11 (no shim needed) and 1.26.4 on 3.12 (the first numpy with 3.12 wheels), and 3.12 gets
setuptools, which provides the ``distutils`` MXNet imports. Python 3.13 has no numpy 1.x, so MXNet
1.9.1 cannot be installed there. OpenCV >= 4.11 / 5.x pulls numpy 2, so OpenCV stays below 4.11.
gluoncv requires the GUI ``opencv-python`` build, so that is the one we depend on (one cv2, never a
headless copy beside it).
"""
from setuptools import find_packages, setup

# onnx 1.15.0 (the last with onnx.mapping, which MXNet's exporter reads) has no 3.12 wheels; 1.16.2 does,
# and tinyvideo_mx/runtime/compat.py rebuilds onnx.mapping for it
SERVE = ["onnx==1.15.0; python_version < '3.12'", "onnx==1.16.2; python_version >= '3.12'",
         "onnxruntime==1.32.0", "multi-model-server==1.1.11", "model-archiver==1.0.3"]

setup(
    name="tinyvideo-mx",
    version="0.1.0",
    description="Generating Videos with Scene Dynamics (VGAN) in MXNet Gluon",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11,<3.13",     # 3.13: no numpy < 2 (MXNet 1.9.1 requires it)
    packages=find_packages(include=["tinyvideo_mx", "tinyvideo_mx.*", "stabilize", "stabilize.*"]),
    # MXNet is not here but in the `cpu` and `gpu` extras: mxnet and mxnet-cu112 both write the same
    # mxnet/ package, so a `gpu` extra added on top of an install_requires naming `mxnet` installs both
    # and the CPU build can win. Exactly one of the two extras is meant to be installed.
    install_requires=[
        "numpy==1.23.5; python_version < '3.12'",
        "numpy==1.26.4; python_version >= '3.12'",
        "setuptools==75.8.0; python_version >= '3.12'",   # provides distutils, which MXNet 1.9.1 imports
        "opencv-python==4.10.0.84",
        "gluoncv==0.10.5.post0",
        "click==8.1.8",
        "tqdm==4.67.1",             # progress bars
        "imageio==2.36.1",          # GIF writing
        "imageio-ffmpeg==0.5.1",    # MP4 (H.264) via the ffmpeg binary shipped in its wheel
        "pillow==11.0.0",
        "tensorboardX==2.6.2.2",    # TensorBoard event files
        "protobuf==4.25.8",
        "torchfile==0.1.0",         # reads the original's Torch7 checkpoints (import-t7), no Torch needed
        "waitress==3.0.2",          # tinyvideo-mx serve: HTTP parsing, thread pool, limits, timeouts (pure Python)
        # gluoncv's own dependencies, pinned to versions that accept numpy 1.23.5 (scipy: also FVD's sqrtm)
        "scipy==1.15.3",
        "matplotlib==3.10.9",
        "pandas==2.3.3",
    ],
    extras_require={
        "cpu": ["mxnet==1.9.1"],
        "gpu": ["mxnet-cu112==1.9.1"],    # CUDA 11.2; GPUs of compute capability 5.0-8.6 (tinyvideo-mx doctor)
        # ONNX export and MXNet Model Server (needs a Java 17 runtime)
        "serve": SERVE,
        # selenium drives Debian's chromium + chromium-driver (apt) in the page's end-to-end test
        # ruff: the lint .ci/run runs before the tests (ruff.toml)
        "test": ["pytest==8.3.4", "selenium==4.40.0", "ruff==0.17.6"] + SERVE,
    },
    entry_points={"console_scripts": ["tinyvideo-mx=tinyvideo_mx.cli:main"]},
)
