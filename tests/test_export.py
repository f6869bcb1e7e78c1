"""``pulse export``: graphs verified in every runtime, written all-or-nothing, checked at load."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import paddle
import paddle.nn.functional as F
import pytest
from typer.testing import CliRunner

import pulse_cli.cli.export  # noqa: F401  (registers the command)
from pulse_cli.cache import sha256_file
from pulse_cli.cli.app import app
from pulse_cli.export import ExportError
from pulse_cli.export import onnx as onnx_export
from pulse_cli.export.bundle import RUNTIMES, export_model, open_graph
from pulse_cli.export.graphs import GRAPH_NAMES, ExportGraph, TensorSpec
from pulse_cli.export.manifest import MANIFEST, ExportedFileError, read_manifest
from pulse_cli.export.verify import ParityError
from pulse_cli.graphs.stylegan import ONNX_NEAREST_UPSCALE_FROM, UpscaleConv2d
from pulse_cli.models.stylegan import StyleGAN
from pulse_cli.options import SearchOptions
from pulse_cli.search import build_objective


@pytest.fixture(scope="module")
def stylegan_small(reference_dir):
    config = json.loads((reference_dir / "stylegan_small.json").read_text())["config"]
    return StyleGAN.from_files(
        reference_dir / "stylegan_small.pt", gaussian_fit=reference_dir / "gaussian_fit.pt", **config
    )


@pytest.fixture(scope="module")
def small_export(stylegan_small, tmp_path_factory):
    """stylegan_small exported once for the module (16 px references, factor 8)."""
    return export_model(stylegan_small, tmp_path_factory.mktemp("export") / "small", resolution_lr=16)


def _assert_complete_and_verified(result, model) -> None:
    manifest = result.manifest
    checks = {(check.graph, check.runtime): check for check in result.checks}
    assert set(checks) == {(graph, runtime) for graph in GRAPH_NAMES for runtime in RUNTIMES}
    assert all(check.passed and check.batch == 2 for check in checks.values())
    assert read_manifest(result.folder) == manifest
    assert manifest["opset"] >= 13 and manifest["model"]["resolution"] == model.resolution
    assert {"paddlepaddle", "paddle2onnx"} <= set(manifest["versions"])
    expected_files = {
        f"{graph}{suffix}" for graph in GRAPH_NAMES for suffix in (".json", ".pdiparams", ".onnx")
    }
    assert set(manifest["files"]) == expected_files
    assert set(path.name for path in result.folder.iterdir()) == expected_files | {MANIFEST}
    for name, digest in manifest["files"].items():
        assert sha256_file(result.folder / name) == digest
    for graph in GRAPH_NAMES:
        recorded = manifest["graphs"][graph]["parity"]
        assert {entry["runtime"] for entry in recorded} == set(RUNTIMES)
        assert all(entry["max_abs_error"] <= 1e-3 for entry in recorded)
        inputs = onnx.load(str(result.folder / f"{graph}.onnx")).graph.input
        assert all(value.type.tensor_type.shape.dim[0].dim_param == "batch" for value in inputs)


def test_stylegan_small_export_passes_every_parity_check(small_export, stylegan_small):
    _assert_complete_and_verified(small_export, stylegan_small)
    scorer = small_export.manifest["graphs"]["scorer"]
    assert [spec["name"] for spec in scorer["outputs"]] == ["image", "image_lr", "total", "terms"]
    assert [spec["name"] for spec in scorer["inputs"]] == [
        "latent",
        *[f"noise_{i}" for i in range(12)],
        "ref_im",
    ]
    assert small_export.manifest["loss"]["terms"] == ["L2", "GEOCROSS"]


def test_dcgan_export_passes_every_parity_check(dcgan_generator, tmp_path):
    result = export_model(dcgan_generator, tmp_path / "dcgan")
    _assert_complete_and_verified(result, dcgan_generator)
    assert result.manifest["factor"] == 4
    assert [spec["name"] for spec in result.manifest["graphs"]["synthesis"]["inputs"]] == ["latent"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exported_scorer_loads_and_scores_any_batch_like_eager_paddle(small_export, stylegan_small, runtime):
    objective = build_objective(stylegan_small, 8, SearchOptions())
    rng = np.random.default_rng(4)
    feed = {"latent": rng.standard_normal((3, 12, 512), dtype=np.float32)}
    feed.update({f"noise_{i}": rng.standard_normal((3, 1, r, r), dtype=np.float32)
                 for i, r in enumerate(stylegan_small.noise_resolutions)})  # fmt: skip
    feed["ref_im"] = rng.random((3, 3, 16, 16), dtype=np.float32)
    with paddle.no_grad():
        noise = [paddle.to_tensor(feed[f"noise_{i}"]) for i in range(12)]
        expected = [
            t.numpy()
            for t in objective(paddle.to_tensor(feed["latent"]), noise, paddle.to_tensor(feed["ref_im"]))
        ]
    got = open_graph(small_export.folder, "scorer", runtime).run(feed)
    assert [g.shape for g in got] == [e.shape for e in expected]
    for ours, reference in zip(got, expected):
        np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())


@pytest.fixture
def damaged_copy(small_export, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(small_export.folder, folder)
    return folder


@pytest.mark.parametrize(
    ("runtime", "victim"),
    [
        ("onnxruntime", "scorer.onnx"),
        ("paddle.inference", "scorer.pdiparams"),
        ("paddle.jit.load", "scorer.json"),
    ],
)
def test_corrupted_graph_file_is_a_clear_error_at_load(damaged_copy, runtime, victim):
    path = damaged_copy / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ExportedFileError, match=rf"{victim}: damaged \(sha256 .*export the model again"):
        open_graph(damaged_copy, "scorer", runtime)


def test_missing_graph_file_and_missing_manifest_are_clear_errors(damaged_copy, tmp_path):
    (damaged_copy / "synthesis.onnx").unlink()
    with pytest.raises(ExportedFileError, match="synthesis.onnx: missing from the export folder"):
        open_graph(damaged_copy, "synthesis")
    with pytest.raises(ExportedFileError, match="no manifest"):
        open_graph(tmp_path, "synthesis")


def test_onnx_file_that_disagrees_with_paddle_fails_the_export_and_writes_nothing(
    stylegan_small, tmp_path, monkeypatch
):
    convert = onnx_export.paddle_to_onnx

    def slightly_wrong(prefix, outputs, opset=onnx_export.OPSET):
        """The real conversion with its first output scaled by 1.01: a silently wrong file."""
        model = convert(prefix, outputs, opset)
        name = model.graph.output[0].name
        for node in model.graph.node:
            node.output[:] = [f"{name}_raw" if out == name else out for out in node.output]
        model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(1.01, np.float32), "wrong"))
        model.graph.node.append(onnx.helper.make_node("Mul", [f"{name}_raw", "wrong"], [name]))
        return model

    monkeypatch.setattr(onnx_export, "paddle_to_onnx", slightly_wrong)
    target = tmp_path / "out"
    with pytest.raises(ParityError, match=r"synthesis in onnxruntime: max abs error [0-9.e-]+ .*FAILED"):
        export_model(stylegan_small, target, resolution_lr=16)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_export_leaves_an_earlier_export_as_it_was(
    small_export, stylegan_small, tmp_path, monkeypatch
):
    target = tmp_path / "kept"
    shutil.copytree(small_export.folder, target)
    before = {path.name: path.read_bytes() for path in target.iterdir()}

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("pulse_cli.export.bundle.check_parity", interrupt)
    with pytest.raises(KeyboardInterrupt):
        export_model(stylegan_small, target, resolution_lr=16)
    assert {path.name: path.read_bytes() for path in target.iterdir()} == before
    assert [path.name for path in tmp_path.iterdir()] == ["kept"]


def test_export_refuses_a_folder_holding_other_files(stylegan_small, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty and holds no earlier export"):
        export_model(stylegan_small, tmp_path, resolution_lr=16)
    with pytest.raises(ExportError, match="does not divide"):
        export_model(stylegan_small, tmp_path / "new", resolution_lr=24)


def test_onnx_files_run_leaky_relu_as_one_op_while_paddle_graphs_keep_the_max_form(
    small_export, stylegan_small
):
    onnx_ops = [node.op_type for node in onnx.load(str(small_export.folder / "synthesis.onnx")).graph.node]
    program = json.loads((small_export.folder / "synthesis.json").read_text())["program"]
    paddle_ops = [op["#"] for op in program["regions"][0]["blocks"][0]["ops"]]  # "1.name": Paddle's op
    epilogues = stylegan_small.num_layers  # one per dlatent row; plus the latent mapping's (slope 5)
    assert onnx_ops.count("LeakyRelu") == epilogues + 1
    assert paddle_ops.count("1.maximum") == epilogues and paddle_ops.count("1.leaky_relu") == 1


def test_onnx_export_of_a_large_upscale_is_nearest_then_conv_with_the_eager_values(tmp_path):
    paddle.seed(0)
    side = ONNX_NEAREST_UPSCALE_FROM
    layer = UpscaleConv2d(4, 3, side)
    layer.eval()
    image = TensorSpec("x", (None, 4, side // 2, side // 2))
    graph = ExportGraph(
        "upscale", layer, [image], [TensorSpec("y", (None, 3, side, side))], [image.input_spec()],
        lambda tensors: [layer(tensors[0])],
    )  # fmt: skip
    model = onnx_export.graph_to_onnx(graph)
    assert "DepthToSpace" not in {node.op_type for node in model.graph.node}
    feed = graph.random_inputs(batch=2)
    (expected,) = graph.run_dygraph(feed)
    (got,) = onnx_export.OnnxGraph(onnx_export.save_model(model, tmp_path / "upscale")).run(feed)
    np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max())


def test_leaky_relu_slopes_survive_paddle2onnx(tmp_path):
    class Leaky(paddle.nn.Layer):
        def forward(self, x):
            return F.leaky_relu(x, 0.2) + F.leaky_relu(x, 5.0)

    spec = TensorSpec("x", (None, 4))
    paddle.jit.save(Leaky(), str(tmp_path / "leaky"), input_spec=[spec.input_spec()])
    model = onnx_export.paddle_to_onnx(tmp_path / "leaky", [TensorSpec("y", (None, 4))])
    slopes = [node.attribute[0].f for node in model.graph.node if node.op_type == "LeakyRelu"]
    assert slopes == pytest.approx([0.2, 5.0])
    assert [value.name for value in model.graph.output] == ["y"]


def test_export_command_writes_a_verified_folder(dcgan_cache, tmp_path):
    result = CliRunner().invoke(app, ["export", "--model", "dcgan-digiface", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "scorer" in result.output and "onnxruntime" in result.output and "failed" not in result.output
    assert read_manifest(tmp_path / "out")["model"]["name"] == "dcgan-digiface"


def test_export_command_reports_a_bad_loss_string_in_one_line(dcgan_cache, tmp_path):
    args = ["export", "--model", "dcgan-digiface", "-o", str(tmp_path / "out"), "--loss-str", "100*L3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "unknown term 'L3'" in result.output
    assert not (tmp_path / "out").exists()
