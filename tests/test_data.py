import collections
import logging

import numpy as np
import pytest

from tinyvideo_mx.data import StripError, encode_strip, load_strip, read_list, synthetic, write_strip
from tinyvideo_mx.data.iterator import DecodedClips, StripIter, TooManyBadClips
from tinyvideo_mx.data.listfile import ListFileError, read_labelled_list

from support.helpers import random_frames, write_png_strip


def area_reference(frames_rgb, size):
    """Hand-computed 2-D block means of uint8 frames, mapped to [-1, 1], as (3, T, size, size)."""
    t, h, w, _ = frames_rgb.shape
    f = frames_rgb.astype(np.float64) / 255.0
    blocks = f.reshape(t, size, h // size, size, w // size, 3).mean(axis=(2, 4))
    return (blocks * 2 - 1).transpose(3, 0, 1, 2)


def test_strip_decoding_is_first_frames_area_averaged_in_minus_one_one(tmp_path):
    frames = random_frames(np.random.default_rng(0), 5, 8)
    path = write_png_strip(tmp_path / "a.png", frames)
    clip = load_strip(path, frame_height=8, frames=4, size=4)
    assert clip.shape == (3, 4, 4, 4) and clip.dtype == np.float32
    np.testing.assert_allclose(clip, area_reference(frames[:4], 4), atol=1e-6)   # first 4 of 5 frames, RGB order
    # Exactly the mean of each 2x2 block: the top-left output pixel, red channel, first frame.
    block = frames[0, :2, :2, 0].astype(np.float64) / 255
    assert abs(clip[0, 0, 0, 0] - (block.mean() * 2 - 1)) < 1e-6


def test_short_clips_repeat_their_last_frame(tmp_path):
    frames = random_frames(np.random.default_rng(1), 3, 8)
    clip = load_strip(write_png_strip(tmp_path / "s.png", frames), frame_height=8, frames=6, size=4)
    expected = area_reference(frames, 4)
    np.testing.assert_allclose(clip[:, :3], expected, atol=1e-6)
    for t in range(3, 6):
        np.testing.assert_array_equal(clip[:, t], clip[:, 2])


def test_non_square_frames_are_resized_by_area(tmp_path):
    frames = random_frames(np.random.default_rng(2), 2, 6, 9)
    clip = load_strip(write_png_strip(tmp_path / "r.png", frames), frame_height=6, frames=2, size=4)
    assert clip.shape == (3, 2, 4, 4) and -1 <= clip.min() and clip.max() <= 1


def test_jpeg_round_trip_and_atomic_write(tmp_path):
    ramp = np.broadcast_to(np.linspace(0, 255, 16)[None, :], (16, 16))
    colour = np.stack([ramp, 255 - ramp, np.full((16, 16), 128.0)], -1)
    frames = np.stack([colour] * 4).astype(np.uint8)   # smooth, and continuous across stacked frames
    write_strip(tmp_path / "j.jpg", frames)
    clip = load_strip(str(tmp_path / "j.jpg"), frame_height=16, frames=4, size=8)
    error = np.abs(clip - area_reference(frames, 8))
    assert error.mean() < 0.02 and error.max() < 0.05     # a few grey levels of JPEG loss
    assert [p.name for p in tmp_path.iterdir()] == ["j.jpg"]   # no temporary left behind
    # a reversed-stride view (the stabiliser's BGR -> RGB) encodes as its contiguous copy does
    bgr = np.ascontiguousarray(frames[..., ::-1])
    assert encode_strip(bgr[..., ::-1]) == (tmp_path / "j.jpg").read_bytes()


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(b"this is not an image at all"), "not a decodable image (corrupt or unsupported format)"),
    (lambda p: p.write_bytes(encode_strip(np.zeros((2, 8, 8, 3), np.uint8))[:-40]), "truncated JPEG (no end-of-image marker)"),
    (lambda p: p.write_bytes(encode_strip(np.zeros((3, 10, 8, 3), np.uint8))),
     "strip height 30 is not a multiple of the frame height 8"),
    (lambda p: None, "file not found"),
])
def test_bad_strips_name_the_file_and_the_problem(tmp_path, make, reason):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(StripError) as err:
        load_strip(str(path), frame_height=8, frames=2, size=4)
    assert str(err.value) == f"{path}: {reason}"
    assert err.value.path == str(path) and err.value.reason == reason


def test_list_files_like_the_original(tmp_path):
    (tmp_path / "list.txt").write_text("a/0000.jpg 12 extra\n\n  b/0001.jpg\n")
    assert read_list(str(tmp_path / "list.txt")) == [str(tmp_path / "a/0000.jpg"), str(tmp_path / "b/0001.jpg")]
    assert read_list(str(tmp_path / "list.txt"), "/data") == ["/data/a/0000.jpg", "/data/b/0001.jpg"]
    with pytest.raises(ListFileError, match=r"list.txt:3: expected 'path class', got 'b/0001.jpg'"):
        read_labelled_list(str(tmp_path / "list.txt"))
    with pytest.raises(ListFileError, match="list file not found"):
        read_list(str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ListFileError, match="empty.txt: list file has no entries"):
        read_list(str(tmp_path / "empty.txt"))


def test_labelled_lists_need_integer_classes(tmp_path):
    (tmp_path / "ok.txt").write_text("a.jpg 3\nb.jpg 0 extra\n")
    assert read_labelled_list(str(tmp_path / "ok.txt"), "/d") == (["/d/a.jpg", "/d/b.jpg"], [3, 0])
    (tmp_path / "l.txt").write_text("a.jpg 3\nb.jpg x\n")
    with pytest.raises(ListFileError, match=r"l.txt:2: class 'x' is not an integer"):
        read_labelled_list(str(tmp_path / "l.txt"))


def make_dataset(tmp_path, n=6, frames=4, height=8):
    rng = np.random.default_rng(5)
    paths, clips = [], []
    for i in range(n):
        f = random_frames(rng, frames, height)
        paths.append(write_png_strip(tmp_path / f"{i}.png", f))
        clips.append(area_reference(f, height // 2).astype(np.float32))
    return paths, clips


def test_iterator_batches_shapes_and_values(tmp_path):
    paths, clips = make_dataset(tmp_path)
    it = StripIter(paths, 3, frames=4, size=4, frame_height=8, sampling="sequential", decode_threads=2)
    assert it.provide_data[0].shape == (3, 3, 4, 4, 4) and it.provide_data[0].layout == "NCDHW"
    batches = [b.data[0].asnumpy() for b in it]
    assert len(batches) == 2
    np.testing.assert_allclose(batches[1][2], clips[5], atol=1e-6)
    it.reset()
    np.testing.assert_allclose(it.next().data[0].asnumpy()[0], clips[0], atol=1e-6)
    it.close()


def test_sampling_is_a_pure_function_of_seed_and_batch(tmp_path):
    paths, _ = make_dataset(tmp_path, n=10)
    a = StripIter(paths, 4, frames=4, size=4, frame_height=8, seed=3)
    b = StripIter(paths, 4, frames=4, size=4, frame_height=8, seed=3)
    assert all((a.batch_indices(k) == b.batch_indices(k)).all() for k in range(20))
    assert not all((a.batch_indices(k) == StripIter(paths, 4, seed=4).batch_indices(k)).all() for k in range(5))
    shuffled = StripIter(paths, 5, frames=4, size=4, frame_height=8, sampling="shuffle")
    assert sorted(np.concatenate([shuffled.batch_indices(0), shuffled.batch_indices(1)])) == list(range(10))
    # Resuming from a state continues with exactly the batches the first iterator would give.
    a.next(), a.next()          # one epoch is 10 // 4 = 2 batches
    with pytest.raises(StopIteration):
        a.next()
    a.reset()
    a.next()
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.next().data[0].asnumpy(), b.next().data[0].asnumpy())
    for it in (a, b, shuffled):
        it.close()


def test_bad_clips_are_reported_replaced_and_limited(tmp_path, caplog):
    paths, clips = make_dataset(tmp_path, n=4)
    (tmp_path / "corrupt.png").write_bytes(b"garbage")
    paths_with_bad = paths + [str(tmp_path / "corrupt.png"), str(tmp_path / "gone.png")]
    it = StripIter(paths_with_bad, 6, frames=4, size=4, frame_height=8, sampling="sequential", max_bad=5)
    with caplog.at_level(logging.WARNING, logger="tinyvideo_mx"):
        batch = it.next().data[0].asnumpy()
    assert it.bad == {str(tmp_path / "corrupt.png"): "not a decodable image (corrupt or unsupported format)",
                      str(tmp_path / "gone.png"): "file not found"}
    assert f"bad clip skipped: {tmp_path / 'gone.png'}: file not found (2 bad so far, limit 5)" in caplog.text
    good = [c for c in clips]
    for slot in (4, 5):   # replaced by usable clips
        assert any(np.allclose(batch[slot], c, atol=1e-6) for c in good)
    it.close()
    strict = StripIter(paths_with_bad, 6, frames=4, size=4, frame_height=8, sampling="sequential", max_bad=1)
    with pytest.raises(TooManyBadClips) as err:
        strict.next()
    assert str(err.value) == (f"2 unusable clips, more than the limit of 1 (--max-bad); the last one: "
                              f"{tmp_path / 'gone.png'}: file not found")
    strict.close()


def test_decoded_clips_are_kept_and_later_epochs_give_the_same_batches_without_decoding(tmp_path):
    paths, clips = make_dataset(tmp_path, n=6)
    (tmp_path / "corrupt.png").write_bytes(b"garbage")
    paths.append(str(tmp_path / "corrupt.png"))     # list of 7: two batches of 3, the bad one replaced
    calls = collections.Counter()

    def counting(path):
        calls[path] += 1
        return load_strip(path, 8, 4, 4)
    epochs = {}
    for cache_mb in (0, 1):
        calls.clear()
        # one decode thread: a clip is looked up when its decode starts, so with more threads a clip
        # prefetched twice before its first decode ends would be decoded twice (harmless, but uncountable)
        it = StripIter(paths, 3, frames=4, size=4, frame_height=8, sampling="shuffle", seed=2, loader=counting,
                       cache_mb=cache_mb, decode_threads=1)
        epochs[cache_mb] = []
        for _ in range(3):
            epochs[cache_mb] += [b.data[0].asnumpy() for b in it]
            it.reset()
        it.close()
        decoded = [calls[path] for path in paths[:6]]
        assert (max(decoded) == 1) if cache_mb else (max(decoded) >= 3)    # every epoch decodes again
        assert it.cache.get(paths[6]) is None           # a bad clip is never kept
    assert len(epochs[1]) == 6
    for uncached, cached in zip(epochs[0], epochs[1]):
        np.testing.assert_array_equal(cached, uncached)
    assert any(np.allclose(epochs[1][-1][0], c, atol=1e-6) for c in clips)


def test_the_decoded_clip_cache_stays_within_its_budget_and_is_read_only():
    clip = np.zeros((3, 4, 4, 4), np.float32)
    cache = DecodedClips(2 * clip.nbytes + clip.nbytes // 2)
    for name in ("a", "b", "c", "a"):
        cache.put(name, clip.copy())
    assert len(cache) == 2 and cache.used == 2 * clip.nbytes and cache.get("c") is None
    with pytest.raises(ValueError):
        cache.get("a")[0, 0, 0, 0] = 1.0
    assert DecodedClips(0).budget == 0 and len(DecodedClips(0)) == 0


def test_synthetic_clips_have_a_static_background_and_a_moving_object(tmp_path):
    a, b = synthetic.clip(0, 7, frames=8, size=64), synthetic.clip(0, 7, frames=8, size=64)
    np.testing.assert_array_equal(a, b)                      # deterministic
    changing = (np.abs(a.astype(int) - a[:1]).max(axis=(0, 3)) > 8)
    assert 0.02 < changing.mean() < 0.4                      # an object moves over a static scene
    list_path = synthetic.ensure_dataset(str(tmp_path / "syn"), clips=5, frames=8, frame_height=32)
    assert read_list(list_path) == [str(tmp_path / "syn" / f"clip{i:05d}.jpg") for i in range(5)]
    for i in range(5):            # written by two threads in any order: still clip i in file i, byte for byte
        written = (tmp_path / "syn" / f"clip{i:05d}.jpg").read_bytes()
        assert written == encode_strip(synthetic.clip(0, i, frames=8, size=32))
    assert load_strip(str(tmp_path / "syn" / "clip00002.jpg"), frame_height=32, frames=8, size=16).shape == (3, 8, 16, 16)


def test_every_clip_reads_each_clip_once_in_order_with_a_short_last_batch(tmp_path):
    from tinyvideo_mx.data import load_strip
    from tinyvideo_mx.data.iterator import every_clip
    rng = np.random.default_rng(5)
    paths = [write_png_strip(tmp_path / f"c{i}.png", random_frames(rng, 4, 8)) for i in range(5)]
    chunks = list(every_clip(paths, 2, frames=4, size=4, frame_height=8, decode_threads=1))
    assert [len(c) for c in chunks] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate(chunks), np.stack([load_strip(p, 8, 4, 4) for p in paths]))
