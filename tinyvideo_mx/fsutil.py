"""Atomic file output: everything the project writes (checkpoints, strips, lists, media) goes through
here, so an interrupted run or a full disk never leaves a half-written file under the final name. And
bounded input: a file a user names is read only if it is a regular file of a plausible size
(``read_regular_file``), so a FIFO cannot hang a run and a device or a huge file cannot flood memory."""
import contextlib
import os
import shutil
import stat
import tempfile

from .errors import FileProblem

# mkstemp creates 0600 files; finished files get the usual permissions (0666 minus the umask).
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success fsync it and rename it onto ``path``.
    On any error the temporary file is removed and the error propagates; ``path`` is untouched."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{ext}", dir=directory)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_bytes_atomic(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text_atomic(path, text):
    write_bytes_atomic(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(path):
    """Yield a temporary directory beside ``path``; rename it onto ``path`` once everything inside has
    been written (an existing ``path`` is moved aside first and deleted only after the rename). On
    error the temporary directory is deleted and ``path`` is untouched."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    try:
        yield tmp
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name), "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o777 & ~_UMASK)
        if os.path.exists(path):
            old = tmp + ".old"
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# -- bounded input ---------------------------------------------------------------------------------
def _kind(mode):
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(path, limit, what="file"):
    """The bytes of ``path``, read only if it is a regular file (symbolic links followed) of at most
    ``limit`` bytes; otherwise a FileProblem naming the file and why. The file is opened non-blocking, so a
    FIFO with no writer cannot hang the reader; its type is taken from the opened descriptor (no race with
    a swap after a check), and at most ``limit`` + 1 bytes are read, so a file that grows while it is read
    cannot flood memory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileProblem(path, "file not found") from None
    except OSError as e:
        raise FileProblem(path, f"cannot read {what} ({e.strerror or e})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem(path, f"is {_kind(info.st_mode)}, not a regular {what}")
        if info.st_size > limit:
            raise FileProblem(path, f"{what} is {info.st_size:,} bytes, more than the {limit:,} allowed")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as e:
        raise FileProblem(path, f"cannot read {what} ({e.strerror or e})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileProblem(path, f"{what} grew past the {limit:,} bytes allowed while it was read")
    return data
