"""``pulse bench``: how fast each backend scores and searches, measured the way a search runs.

Each backend is measured in its own fresh process (so peak memory and Paddle's global state are
its own), on one device for Paddle and onnxruntime alike (``config.device``, default Paddle's).
One objective is built per backend (``search.build_objective``: compiled for ``static``); the
forward pass is its forward-only scorer, timed on random latents, and the search step (forward,
backward, spherical optimizer step) is timed between the steps of a real ``search`` of that same
objective. The first ``warmup`` runs of each (compiling, exporting, lowering kernels) are left
out of the timings and counted in the setup time; each figure is the median of ``repeats`` runs
with their minimum and maximum. Peak memory is the highest resident (host) memory during the
measurement: from building the objective to the last step.
The face (``measure_face``, a process of its own too) is what a user waits for: one face of the
demo photo through ``pulse upsample``'s job (detection, alignment, the search with the default
settings on the generator's default backend, paste-back), timed once, first-use compiling included.
Without ``weights`` the model's architecture runs on random weights: speed does not depend on them.
"""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from pulse_cli import allocator, threads
from pulse_cli.errors import first_line

SEARCH_STEPS = 100
BOTH = "both"  # --allocator both: each backend with glibc's default malloc, then tuned
ALLOCATOR_CHOICES = (*allocator.MODES, BOTH)
NIQE_SIDE = 1024  # the side of the image NIQE is timed on (``pulse bench --niqe``)


class BenchError(ValueError):
    """A benchmark that cannot run as asked (unknown model, wrong resolution, bad counts)."""


@dataclass(frozen=True)
class BenchConfig:
    """What to measure: a generator plugin at a resolution, a batch size, how many runs."""

    model: str
    resolution: int
    batch: int = 1
    repeats: int = 3
    warmup: int = 1
    weights: Path | None = None
    seed: int = 0
    device: str | None = None  # cpu, gpu or gpu:N for Paddle and onnxruntime alike; None: Paddle's
    allocator: str = "tuned"  # an allocator mode (pulse_cli.allocator.MODES), or both of them
    face_steps: int | None = None  # the face's search steps; None: the search's default

    def allocator_modes(self) -> tuple[str, ...]:
        """The allocator modes each backend is measured under, in order."""
        return ("default", "tuned") if self.allocator == BOTH else (self.allocator,)


@dataclass
class Timing:
    """Seconds per image over repeated runs: median, minimum and maximum."""

    median: float
    min: float
    max: float

    @classmethod
    def of(cls, seconds: list[float], batch: int) -> Timing:
        per_image = [s / batch for s in seconds]
        return cls(statistics.median(per_image), min(per_image), max(per_image))


@dataclass
class BenchRow:
    """One backend's figures; ``step`` is None where the backend has no gradient steps of its own,
    everything but ``error`` is empty when its measurement failed.

    ``device``: what Paddle and onnxruntime ran on. ``setup_seconds``: the measurement's time
    outside the timed runs (building the objective and scorer: compiling, exporting, opening
    sessions; the warm-up runs; the search's preparation). ``peak_rss_mib``: the highest resident
    host memory during the measurement, ``rss_before_mib`` what was resident as it began (Python,
    Paddle, the model); ``peak_rss_scope`` says which span the peak covers: ``measurement``, or
    ``process`` where the kernel cannot reset the high-water mark (the process ran only this
    backend). ``allocator``: the allocator mode asked for, ``allocator_setting`` what was in force
    (``AllocatorState.description``); ``threads``: the OpenMP (oneDNN) thread count in force,
    ``threads_setting`` who set it and why (``ThreadState.description``).
    """

    backend: str
    allocator: str | None = None
    allocator_setting: str | None = None
    threads: int | None = None
    threads_setting: str | None = None
    device: str | None = None
    runs_on: dict[str, str] = field(default_factory=dict)
    forward: Timing | None = None
    step: Timing | None = None
    images_per_minute: float | None = None
    peak_rss_mib: float | None = None
    rss_before_mib: float | None = None
    peak_rss_scope: str | None = None
    setup_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class FaceRow:
    """One face of the demo photo end to end (``measure_face``): ``seconds`` from the photo to the
    pasted-back output (detection, alignment, the search, paste-back, writing the files),
    ``search_seconds`` the search alone (first-use compiling included), ``steps`` and ``backend``
    what the search ran; memory, allocator and threads as in ``BenchRow``."""

    backend: str | None = None
    steps: int | None = None
    seconds: float | None = None
    search_seconds: float | None = None
    peak_rss_mib: float | None = None
    rss_before_mib: float | None = None
    peak_rss_scope: str | None = None
    allocator: str | None = None
    allocator_setting: str | None = None
    threads: int | None = None
    threads_setting: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class NiqeRow:
    """NIQE's time per image for one variant and backend; ``setup_seconds`` is its warm-up runs
    (for ``onnx``: exporting the graph when the cache lacks it, opening the session)."""

    variant: str
    backend: str
    seconds: Timing | None = None
    setup_seconds: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def niqe_test_image(side: int, seed: int) -> np.ndarray:
    """A fixed ``side``×``side`` RGB uint8 image for timing NIQE: a 32×32 random image from
    ``seed`` enlarged bicubically, plus mild noise (smooth areas and texture, as a photo has)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8))
    image = np.asarray(small.resize((side, side), Image.BICUBIC), np.float64)
    return np.clip(image + rng.normal(0.0, 4.0, image.shape), 0, 255).astype(np.uint8)


def measure_niqe(config: BenchConfig, side: int = NIQE_SIDE) -> list[NiqeRow]:
    """Time NIQE, every variant with every backend, on one ``side``² image (``niqe_test_image``),
    in this process: ``config.warmup`` untimed runs, then ``config.repeats`` timed ones."""
    from pulse_cli.niqe import BACKENDS, VARIANTS

    image = niqe_test_image(side, config.seed)
    return [_time_niqe(image, variant, backend, config) for variant in VARIANTS for backend in BACKENDS]


def _time_niqe(image: np.ndarray, variant: str, backend: str, config: BenchConfig) -> NiqeRow:
    from pulse_cli.niqe import niqe

    def score() -> None:
        niqe(image, variant, backend)

    try:
        began = time.perf_counter()
        _timed(score, config.warmup)
        setup = time.perf_counter() - began
        seconds = _timed(score, config.repeats)
    except Exception as exc:  # one failing variant or backend still leaves the others' rows
        return NiqeRow(variant, backend, error=first_line(exc))
    return NiqeRow(variant, backend, Timing.of(seconds, 1), setup)


def _generator(config: BenchConfig):
    """The model's architecture with random weights (``GeneratorSpec.build``), or with ``weights``."""
    from pulse_cli.models.registry import build_generator, load_generator

    if config.weights is None:
        return build_generator(config.model, resolution=config.resolution, seed=config.seed)
    generator = load_generator(config.model, weights=config.weights)
    if generator.resolution != config.resolution:
        raise BenchError(f"{config.model} makes {generator.resolution} px images, not {config.resolution} px")
    return generator


def _status_mib(key: str) -> float | None:
    """A memory figure of this process from ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in MiB."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{key}:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024.0 if found else None


def reset_peak_rss() -> bool:
    """Start a new peak-RSS span (Linux: ``5`` into ``/proc/self/clear_refs`` resets ``VmHWM``);
    False where it cannot be reset, so the peak stays the process's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_mib("VmHWM") is not None


def peak_rss_since_reset() -> float:
    """The highest resident memory since ``reset_peak_rss`` (or since the process began), MiB."""
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(run, count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        began = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - began)
    return seconds


def measure_backend(config: BenchConfig, name: str) -> BenchRow:
    """Measure backend ``name`` in this process (``run_bench`` calls this in a fresh one per backend)."""
    import paddle

    from pulse_cli.backends import get_backend
    from pulse_cli.devices import Device, paddle_device
    from pulse_cli.export.bundle import default_resolution_lr
    from pulse_cli.options import SearchOptions
    from pulse_cli.search import build_objective, draw_start, search

    if config.device is not None:
        paddle.set_device(str(Device.parse(config.device)))
    generator = _generator(config)
    generator.eval()
    for parameter in generator.parameters():
        parameter.stop_gradient = True
    side = default_resolution_lr(generator.resolution)
    rng = np.random.default_rng(config.seed)
    ref_im = rng.random((config.batch, 3, side, side), dtype=np.float32)
    options = SearchOptions(seed=config.seed, backend=name, batch_size=config.batch)
    backend = get_backend(name)

    rss_before = _status_mib("VmRSS")
    scope = "measurement" if reset_peak_rss() else "process"
    began = time.perf_counter()
    objective = build_objective(generator, generator.resolution // side, options)  # the one objective
    scorer = backend.scorer(objective)
    start = draw_start(generator, config.batch, options, rng)
    forward = _timed(lambda: scorer.score(start.latent, start.noise, ref_im), config.warmup + config.repeats)
    setup = time.perf_counter() - began - sum(forward[config.warmup :])
    notes = [f"weights: {'random' if config.weights is None else config.weights}"]
    step = images_per_minute = None
    roles = backend.roles(objective, scorer)
    if not backend.steps_own:
        notes.append(f"forward-only: its search steps run on {roles['gradient steps']} (see that row)")
    else:
        stamps: list[float] = []
        steps = config.warmup + config.repeats + 1
        search_began = time.perf_counter()
        search(
            generator,
            ref_im,
            options.with_(steps=steps),
            on_step=lambda _: stamps.append(time.perf_counter()),
            objective=objective,  # the program the forward was timed on, compiled once
        )
        setup += stamps[config.warmup] - search_began  # preparation and warm-up steps
        step = Timing.of(list(np.diff(stamps))[config.warmup :], config.batch)
        images_per_minute = 60.0 / (SEARCH_STEPS * step.median)
    return BenchRow(
        backend=name,
        device=str(paddle_device()),
        runs_on=roles,
        forward=Timing.of(forward[config.warmup :], config.batch),
        step=step,
        images_per_minute=images_per_minute,
        peak_rss_mib=peak_rss_since_reset(),
        rss_before_mib=rss_before,
        peak_rss_scope=scope,
        setup_seconds=setup,
        notes=notes,
    )


def measure_face(config: BenchConfig) -> FaceRow:
    """Time one face of the demo photo in this process (``run_face`` calls this in a fresh one), as
    ``pulse upsample`` runs a photo: ``upsample_folder`` with the default search options and
    strategy (but ``config.face_steps`` and ``config.seed``) and one face, without the contact
    sheet."""
    import paddle

    from pulse_cli.demo import write_demo_photo
    from pulse_cli.devices import Device
    from pulse_cli.options import TOOL_STRATEGY, SearchOptions
    from pulse_cli.upsample import FaceOptions, upsample_folder

    if config.device is not None:
        paddle.set_device(str(Device.parse(config.device)))
    generator = _generator(config)
    options = SearchOptions(seed=config.seed, strategy=TOOL_STRATEGY)
    options = options.with_(steps=config.face_steps or options.steps)
    with tempfile.TemporaryDirectory(prefix="pulse-bench-face-") as scratch:
        folder = Path(scratch)
        write_demo_photo(folder)
        rss_before = _status_mib("VmRSS")
        scope = "measurement" if reset_peak_rss() else "process"
        began = time.perf_counter()
        report = upsample_folder(
            generator, folder / "inputs", folder / "outputs", options, contact_sheet=False,
            faces=FaceOptions(mode="detect", max_faces=1),
        )  # fmt: skip
        seconds = time.perf_counter() - began
    searched = [record for record in report.images if record.seconds is not None]
    if report.failed or len(searched) != 1:
        errors = [record.error for record in report.images if record.error]
        raise BenchError(errors[0] if errors else f"{len(searched)} faces searched in the demo photo, not 1")
    return FaceRow(
        backend=report.options["backend"],
        steps=searched[0].steps_run,
        seconds=seconds,
        search_seconds=searched[0].seconds,
        peak_rss_mib=peak_rss_since_reset(),
        rss_before_mib=rss_before,
        peak_rss_scope=scope,
    )


FACE = "face"  # worker_main's task: the face, where otherwise it names a backend


def worker_main() -> None:
    """Entry of a benchmark process: ``argv`` holds the config as JSON, what to measure (``FACE``
    or a backend's name) and where to write the row (or the error line) as JSON. The config's
    allocator mode is put in force first, before any tensor exists, then oneDNN's threads, as
    ``pulse``'s own entry point does."""
    config_json, what, name, result_path = sys.argv[1:5]
    fields = json.loads(config_json)
    fields["weights"] = Path(fields["weights"]) if fields["weights"] else None
    config = BenchConfig(**fields)
    try:
        memory = allocator.apply(config.allocator)
        cores = threads.apply()
        row = measure_face(config) if what == FACE else measure_backend(config, name)
        row.allocator, row.allocator_setting = memory.mode, memory.description
        row.threads, row.threads_setting = cores.threads, cores.description
        result = {"row": row.to_dict()}
    except Exception as exc:  # the parent reports it as one line
        result = {"error": first_line(exc)}
    Path(result_path).write_text(json.dumps(result))


def _row(data: dict) -> BenchRow:
    timings = {key: Timing(**data[key]) if data[key] else None for key in ("forward", "step")}
    return BenchRow(**{**data, **timings})


def _measure_in_process(config: BenchConfig, what: str, name: str) -> dict:
    """``worker_main``'s result for ``what`` (a backend ``name``, or ``FACE``) in a fresh process:
    ``{"row": …}``, or ``{"error": line}``."""
    fields = {**asdict(config), "weights": str(config.weights) if config.weights else None}
    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as scratch:
        result_path = Path(scratch) / "row.json"
        command = [sys.executable, "-c", "from pulse_cli.bench import worker_main; worker_main()"]
        process = subprocess.run(
            [*command, json.dumps(fields), what, name, str(result_path)],
            capture_output=True,
            text=True,
            check=False,
            # OMP_NUM_THREADS as the user left it; tcmalloc preloaded for the tuned mode only
            env=allocator.environment_for(config.allocator, threads.user_environment(os.environ)),
        )
        if not result_path.is_file():
            lines = [line for line in process.stderr.splitlines() if line.strip()]
            cause = lines[-1] if lines else f"exit code {process.returncode}"
            return {"error": f"the benchmark process died: {cause}"}
        return json.loads(result_path.read_text())


def _run_in_process(config: BenchConfig, backend: str) -> BenchRow:
    result = _measure_in_process(config, "backend", backend)
    if "error" in result:
        return BenchRow(backend, config.allocator, error=result["error"])
    return _row(result["row"])


def run_face(config: BenchConfig) -> FaceRow:
    """Measure the face (``measure_face``) in a fresh process, under the config's allocator mode
    (tuned, for ``both``: as ``pulse`` runs); a measurement that fails gets a row with its ``error``."""
    mode = "tuned" if config.allocator == BOTH else config.allocator
    result = _measure_in_process(replace(config, allocator=mode), FACE, "")
    if "error" in result:
        return FaceRow(allocator=mode, error=result["error"])
    return FaceRow(**result["row"])


def _check_device(text: str) -> None:
    from pulse_cli.devices import Device, DeviceError, check_device

    try:
        check_device(Device.parse(text))
    except DeviceError as exc:
        raise BenchError(str(exc)) from None


def check_config(config: BenchConfig, selected: list[str]) -> None:
    """Refuse a benchmark that cannot run, before any process is started."""
    from pulse_cli.backends import backend_names
    from pulse_cli.models.registry import ModelError, get_spec

    known = backend_names()
    if config.device is not None:
        _check_device(config.device)
    unknown = [name for name in selected if name not in known]
    if unknown:
        raise BenchError(f"unknown backend {unknown[0]!r}; known: {', '.join(known)}, all")
    if config.allocator not in ALLOCATOR_CHOICES:
        known_modes = ", ".join(ALLOCATOR_CHOICES)
        raise BenchError(f"unknown allocator mode {config.allocator!r}; known: {known_modes}")
    if config.batch < 1 or config.repeats < 1 or config.warmup < 0:
        raise BenchError("--batch and --repeats must be at least 1, --warmup at least 0")
    if config.face_steps is not None and config.face_steps < 1:
        raise BenchError("--face-steps must be at least 1")
    if config.resolution < 4 or config.resolution & (config.resolution - 1):
        raise BenchError(f"--resolution must be a power of two of at least 4, got {config.resolution}")
    if config.weights is None:
        try:
            spec = get_spec(config.model)
        except ModelError as exc:
            raise BenchError(f"no random-weight twin of {config.model!r} ({exc}); pass --weights") from None
        if spec.fixed_resolution and config.resolution != spec.resolution:
            raise BenchError(f"{config.model} makes {spec.resolution} px images, not {config.resolution} px")


def run_bench(config: BenchConfig, selected: list[str]) -> list[BenchRow]:
    """Measure each of ``selected`` backends in a fresh process, in order, under each of the
    config's allocator modes back to back (default, then tuned, for ``both``); a measurement
    that fails gets a row with its ``error``."""
    check_config(config, selected)
    return [
        _run_in_process(replace(config, allocator=mode), backend)
        for backend in selected
        for mode in config.allocator_modes()
    ]
