"""Faces in photos: MTCNN's weights read safely, detection as the reference, FFHQ alignment, paste-back."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import paddle
import pytest
from PIL import Image

from pulse_cli.faces.align import align, ffhq_quad
from pulse_cli.faces.detect import KEYPOINTS, Detector
from pulse_cli.faces.joblib_pickle import read_joblib_arrays
from pulse_cli.faces.lz4_frame import MAGIC, LZ4FrameError, decompress_frame
from pulse_cli.faces.networks import RNet
from pulse_cli.faces.paste import MAX_SIDE, default_scale, feather_mask, paste
from pulse_cli.faces.planes import resized
from pulse_cli.faces.weights import MEMBERS, keras_to_paddle
from pulse_cli.images import read_image
from pulse_cli.weights import WeightsError

AGREEMENT_PX = 5  # the fixture's stated agreement between MTCNN implementations on the same weights


def lz4_frame(*blocks: bytes) -> bytes:
    """An LZ4 frame (version 1, linked 64 KB blocks, no checksums) around compressed ``blocks``."""
    header = MAGIC + bytes([0x40, 0x40, 0x00])
    return header + b"".join(struct.pack("<I", len(b)) + b for b in blocks) + struct.pack("<I", 0)


def test_lz4_decoder_repeats_overlapping_matches_and_reaches_into_earlier_blocks():
    # token 0x32: 3 literals "abc", then a match of 2 + 4 = 6 bytes at offset 2 (overlapping)
    first = bytes([0x32]) + b"abc" + struct.pack("<H", 2) + bytes([0x10]) + b"!"
    # a second block whose match (offset 11, length 4) copies from the first block's output
    second = bytes([0x10]) + b"?" + struct.pack("<H", 11) + bytes([0x10]) + b"."
    assert decompress_frame(lz4_frame(first, second)) == b"abcbcbcbc!" + b"?" + b"abcb" + b"."


def test_lz4_decoder_refuses_a_match_before_the_start():
    block = bytes([0x10]) + b"a" + struct.pack("<H", 5) + bytes([0x10]) + b"b"
    with pytest.raises(LZ4FrameError, match="out of range"):
        decompress_frame(lz4_frame(block))


def test_joblib_reader_refuses_globals_outside_the_allowlist():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(WeightsError, match="refused to load global"):
        read_joblib_arrays(pickle.dumps([Evil()], protocol=4), "evil.lz4")


def test_wheel_members_decompress_to_their_pinned_hashes_and_keras_layouts(mtcnn_wheel):
    arrays = {}
    with zipfile.ZipFile(mtcnn_wheel) as archive:
        for member in MEMBERS:
            stream = decompress_frame(archive.read(member.path))
            assert hashlib.sha256(stream).hexdigest() == member.decompressed_sha256
            arrays[member.network] = read_joblib_arrays(stream, member.path)
    assert [a.shape for a in arrays["pnet"]][:3] == [(3, 3, 3, 10), (10,), (1, 1, 10)]
    assert all(a.dtype == np.float32 for net in arrays.values() for a in net)


def keras_rnet(weights: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R-net as Keras computes it, in numpy: NHWC, kernels [kh, kw, in, out], TF 'same' pooling,
    Permute((2, 1, 3)) before Flatten."""

    def conv(h, kernel, bias):
        kh, kw = kernel.shape[:2]
        out = np.zeros((h.shape[0] - kh + 1, h.shape[1] - kw + 1, kernel.shape[3]))
        for i in range(kh):
            for j in range(kw):
                out += h[i : i + out.shape[0], j : j + out.shape[1]] @ kernel[i, j]
        return out + bias

    def prelu(h, alpha):
        return np.where(h > 0, h, h * alpha.reshape(-1))

    def pool(h, k, s, same):
        n = h.shape[0]
        if same:  # TensorFlow pads at the far edge with -inf
            size = -(-n // s)
            extra = max((size - 1) * s + k - n, 0)
            h = np.pad(h, ((0, extra), (0, extra), (0, 0)), constant_values=-np.inf)
        else:
            size = (n - k) // s + 1
        return np.array(
            [
                [h[i * s : i * s + k, j * s : j * s + k].max(axis=(0, 1)) for j in range(size)]
                for i in range(size)
            ]
        )

    w = weights
    h = pool(prelu(conv(x, w[0], w[1]), w[2]), 3, 2, True)
    h = pool(prelu(conv(h, w[3], w[4]), w[5]), 3, 2, False)
    h = prelu(conv(h, w[6], w[7]), w[8]).transpose(1, 0, 2).reshape(-1)
    h = prelu(h @ w[9] + w[10], w[11])
    logits = h @ w[14] + w[15]
    return h @ w[12] + w[13], np.exp(logits[1]) / np.exp(logits).sum()


def test_paddle_rnet_computes_what_the_keras_model_computes(mtcnn_wheel):
    member = next(m for m in MEMBERS if m.network == "rnet")
    with zipfile.ZipFile(mtcnn_wheel) as archive:
        weights = read_joblib_arrays(decompress_frame(archive.read(member.path)), member.path)
    network = RNet()
    keras_to_paddle(network, weights, member.path)
    network.eval()
    x = np.random.default_rng(0).normal(size=(24, 24, 3))
    offsets, probability = network(paddle.to_tensor(x.transpose(2, 0, 1)[None].astype(np.float32)))
    expected_offsets, expected_probability = keras_rnet(weights, x)
    np.testing.assert_allclose(offsets.numpy()[0], expected_offsets, atol=1e-5)
    np.testing.assert_allclose(probability.numpy()[0], expected_probability, atol=1e-6)


@pytest.mark.parametrize("name", ["astronaut_512.png", "grace_hopper_512x600.jpg"])
def test_detector_finds_the_reference_faces_within_5px(detector, reference_dir, name):
    expected = json.loads((reference_dir / "faces_mtcnn.json").read_text())["images"][name]
    found = detector(read_image(reference_dir / "images" / name))
    assert len(found) == len(expected)
    for face, ref in zip(found, expected):
        assert np.abs(np.array(face.box) - ref["box"]).max() <= AGREEMENT_PX
        keypoints = np.array([ref["keypoints"][k] for k in KEYPOINTS])
        assert np.abs(face.keypoints - keypoints).max() <= AGREEMENT_PX


def test_a_photo_without_faces_gives_none(detector, reference_dir):
    assert detector(read_image(reference_dir / "images" / "coffee_500x333.png")) == []


def eye_angle(keypoints: np.ndarray) -> float:
    dx, dy = keypoints[1] - keypoints[0]
    return float(np.degrees(np.arctan2(dy, dx)))


def test_alignment_undoes_a_30_degree_roll(detector, reference_dir):
    photo = Image.open(reference_dir / "images" / "astronaut_512.png").convert("RGB")
    rolled = photo.rotate(30, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(128, 128, 128))
    image = np.asarray(rolled, np.float32).transpose(2, 0, 1) / 255.0
    (face,) = detector(image)
    assert abs(eye_angle(face.keypoints) + 30) < 10  # the roll is there before alignment
    aligned = align(image, face.keypoints, 256)
    (again,) = detector(aligned.image)  # found afresh in the aligned crop
    assert abs(eye_angle(again.keypoints)) <= 2
    assert abs(eye_angle(aligned.to_crop(face.keypoints))) <= 2


def test_a_face_at_the_border_is_reflect_padded(detector, reference_dir):
    photo = read_image(reference_dir / "images" / "astronaut_512.png")[:, 30:, 190:]  # cut at the left cheek
    (face,) = detector(photo)
    aligned = align(photo, face.keypoints, 64)
    assert (aligned.quad[:, 0] < 0).any()  # the crop reaches outside the photo
    ys, xs = np.mgrid[:64, :64]
    where = aligned.to_photo(np.stack([xs, ys], axis=-1).reshape(-1, 2)).reshape(64, 64, 2)
    outside = (where[..., 0] < -2) | (where[..., 1] < -2)
    assert outside.sum() > 64
    # filled from the photo (reflected, blurred), not left black
    assert aligned.image[:, outside].mean() > 0.2 and np.isfinite(aligned.image).all()


def test_the_aligned_crop_maps_back_onto_its_quad(detector, reference_dir):
    photo = read_image(reference_dir / "images" / "grace_hopper_512x600.jpg")
    (face,) = detector(photo)
    aligned = align(photo, face.keypoints, 16)
    corners = aligned.to_photo(np.array([[-0.5, -0.5], [-0.5, 15.5], [15.5, 15.5], [15.5, -0.5]]))
    np.testing.assert_allclose(corners, ffhq_quad(face.keypoints), atol=1e-9)
    np.testing.assert_allclose(aligned.to_crop(aligned.to_photo(face.keypoints)), face.keypoints, atol=1e-9)


def _crop_coordinates(aligned, height: int, width: int) -> np.ndarray:
    """Where each pixel of a [height, width] enlargement of the photo lies across the crop: 0..1."""
    ys, xs = np.mgrid[:height, :width]
    scale = np.array([width, height]) / 512
    photo_points = (np.stack([xs, ys], axis=-1).reshape(-1, 2) + 0.5) / scale - 0.5
    return ((aligned.to_crop(photo_points) + 0.5) / aligned.size).reshape(height, width, 2)


def test_pasting_the_aligned_crop_back_gives_the_photo_again(detector, reference_dir):
    photo = read_image(reference_dir / "images" / "astronaut_512.png")  # raw: sharp edges and all
    (face,) = detector(photo)
    aligned = align(photo, face.keypoints, 1024)  # as large as the 1024 px model's faces
    pasted = paste(photo, [(aligned.image, aligned)])  # the default: the face at its own size
    height, width = pasted.shape[1:]
    assert width == round(512 * 1024 / aligned.side_in_photo)
    enlarged = np.clip(resized(photo.transpose(1, 2, 0), (width, height), Image.Resampling.BICUBIC), 0, 1)
    inside = _crop_coordinates(aligned, height, width)
    outside_mask = ((inside < -0.01) | (inside > 1.01)).any(axis=-1)
    full_weight = ((inside > 0.11) & (inside < 0.89)).all(axis=-1)  # inside the 10 % feather
    error = np.abs(pasted.transpose(1, 2, 0) - enlarged).max(axis=-1)
    assert np.array_equal(error[outside_mask], np.zeros(outside_mask.sum(), np.float32))
    # measured: mean 0.01/255, 99th percentile 0.06/255, max 1.03/255
    assert error[full_weight].max() <= 2 / 255


def test_pasting_into_the_photo_unenlarged_loses_what_the_antialiasing_filter_takes(detector, reference_dir):
    # shrinking a 1024 px face ~6x into the photo must low-pass it (a real face would alias); the
    # filter also takes the photo's own detail near its Nyquist frequency: mean 2.9/255, p99 12.5/255
    photo = read_image(reference_dir / "images" / "astronaut_512.png")
    (face,) = detector(photo)
    aligned = align(photo, face.keypoints, 1024)
    pasted = paste(photo, [(aligned.image, aligned)], scale=1.0)
    assert pasted.shape == photo.shape
    inside = _crop_coordinates(aligned, 512, 512)
    outside_mask = ((inside < -0.01) | (inside > 1.01)).any(axis=-1)
    full_weight = ((inside > 0.11) & (inside < 0.89)).all(axis=-1)
    error = np.abs(pasted - photo).max(axis=0)
    assert np.array_equal(pasted[:, outside_mask], photo[:, outside_mask])
    assert error[full_weight].mean() <= 3.5 / 255


def test_the_feather_mask_is_one_inside_and_fades_to_zero_at_the_edge():
    mask = feather_mask(100, 0.1)
    assert mask[10:90, 10:90].min() == 1.0 and mask[0].max() < 0.01 and mask[:, 0].max() < 0.01
    assert np.all(np.diff(mask[50, :50]) >= 0)


def test_default_scale_gives_each_face_its_size_up_to_the_cap(detector, reference_dir):
    photo = read_image(reference_dir / "images" / "astronaut_512.png")
    (face,) = detector(photo)
    aligned = align(photo, face.keypoints, 16)
    small = default_scale((512, 512), [(256, aligned)])
    assert small == pytest.approx(256 / aligned.side_in_photo)
    assert default_scale((512, 512), [(4096, aligned)]) == MAX_SIDE / 512  # 24x would make 12288 px
    upsampled = np.repeat(np.repeat(aligned.image, 16, axis=1), 16, axis=2)
    assert paste(photo, [(upsampled, aligned)]).shape[1:] == (round(512 * small), round(512 * small))


def test_onnxruntime_graphs_find_what_the_paddle_layers_find(detector, mtcnn_cache, reference_dir):
    photo = read_image(reference_dir / "images" / "grace_hopper_512x600.jpg")
    (on_paddle,) = Detector(runtime="paddle")(photo)
    (on_onnx,) = detector(photo)
    np.testing.assert_allclose(on_onnx.box, on_paddle.box, atol=1e-3)
    np.testing.assert_allclose(on_onnx.keypoints, on_paddle.keypoints, atol=1e-3)
