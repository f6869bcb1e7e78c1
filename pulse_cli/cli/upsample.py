"""``pulse upsample``: every option of PULSE's run.py, a progress bar, a report and exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pulse_cli.cli.app import app
from pulse_cli.cli.common import (
    BackendChoice,
    Device,
    choices,
    device_option,
    err,
    fail,
    get_generator,
    run_job,
    use_device,
)
from pulse_cli.faces.detect import MIN_FACE
from pulse_cli.faces.screen import MIN_CONFIDENCE
from pulse_cli.models.registry import DEFAULT_MODEL
from pulse_cli.options import (
    LATENT_LAYOUTS,
    LR_SCHEDULES,
    NOISE_TYPES,
    STRATEGIES,
    TOOL_STRATEGY,
    SearchOptions,
)
from pulse_cli.upsample import (
    NIQE_MIN_SIDE,
    FaceOptions,
    Listener,
    Shard,
    UpsampleReport,
    check_options,
    list_inputs,
    prepare_output_dir,
    upsample_folder,
)

DEFAULTS = SearchOptions()
SEARCH = "Search (PULSE's run.py)"
MODEL = "Model and device"
OUTPUT = "Output"
FACES = "Faces in photos"


NoiseType = choices("NoiseType", NOISE_TYPES)
LrSchedule = choices("LrSchedule", LR_SCHEDULES)
LatentLayoutChoice = choices("LatentLayoutChoice", LATENT_LAYOUTS)
Strategy = choices("Strategy", STRATEGIES)


def _option(panel: str, help: str, *names: str, **extra: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=panel, **extra)


DEFAULT_NOISE_TYPE = NoiseType(DEFAULTS.noise_type)
DEFAULT_LR_SCHEDULE = LrSchedule(DEFAULTS.lr_schedule)
DEFAULT_STRATEGY = Strategy(TOOL_STRATEGY)
SHARD_HELP = (
    "Process only slice K (from 0) of N of the sorted inputs, e.g. 0/4 (default: from "
    "PADDLE_TRAINER_ID/PADDLE_TRAINERS_NUM under paddle.distributed.launch)."
)


@app.command()
def upsample(
    input_dir: Annotated[Path, typer.Argument(help="Folder of aligned face crops and/or photos.")],
    output_dir: Annotated[Path, typer.Option("--output", "-o", help="Where outputs and report.json go.")],
    model: Annotated[str, _option(MODEL, "Generator plugin (see `pulse models list`).")] = DEFAULT_MODEL,
    weights: Annotated[Path | None, _option(MODEL, "Weights file or folder for the model.")] = None,
    gaussian_fit: Annotated[Path | None, _option(MODEL, "StyleGAN gaussian fit (gaussian_fit.pt).")] = None,
    device: Annotated[Device | None, device_option("Device (default: Paddle's, GPU if any):", MODEL)] = None,
    backend: Annotated[
        BackendChoice | None,
        _option(MODEL, "How the forward pass runs.", show_default="the model's default"),
    ] = None,
    strategy: Annotated[
        Strategy,
        _option(SEARCH, "pulse: the paper's search; faithful: the same step in stages, tiled then W+ with "
                "the noise the input constrains, then the input's missed detail put back "
                "(README, Faithful faces).")
    ] = DEFAULT_STRATEGY,
    steps: Annotated[int, _option(SEARCH, "Optimization steps.")] = DEFAULTS.steps,
    eps: Annotated[float, _option(SEARCH, "Target for the downscaling loss (L2).")] = DEFAULTS.eps,
    seed: Annotated[int | None, _option(SEARCH, "Seed for reproducible runs.")] = DEFAULTS.seed,
    loss_str: Annotated[str, _option(SEARCH, "Weighted loss terms.")] = DEFAULTS.loss_str,
    noise_type: Annotated[NoiseType, _option(SEARCH, "StyleGAN noise inputs.")] = DEFAULT_NOISE_TYPE,
    num_trainable_noise_layers: Annotated[
        int, _option(SEARCH, "Noise layers optimized with --noise-type trainable.")
    ] = DEFAULTS.num_trainable_noise_layers,
    latent_layout: Annotated[
        LatentLayoutChoice | None,
        _option(
            SEARCH,
            "Latent vectors searched: full (one per layer, PULSE's W+), tiled (one for all), shared "
            "(one per group of layers the model shares). Default: the model's (README, Models).",
            show_default=False,
        ),
    ] = None,
    tile_latent: Annotated[
        bool, _option(SEARCH, "PULSE's name for --latent-layout tiled.", "--tile-latent")
    ] = DEFAULTS.tile_latent,
    bad_noise_layers: Annotated[
        str | None, _option(SEARCH, "Dot-separated noise layers held at zero (default: the last).")
    ] = DEFAULTS.bad_noise_layers,
    opt_name: Annotated[str, _option(SEARCH, "Optimizer: sgd, adam, sgdm, adamax.")] = DEFAULTS.opt_name,
    learning_rate: Annotated[float, _option(SEARCH, "Learning rate.")] = DEFAULTS.learning_rate,
    lr_schedule: Annotated[LrSchedule, _option(SEARCH, "Learning-rate schedule.")] = DEFAULT_LR_SCHEDULE,
    batch_size: Annotated[int, _option(SEARCH, "Images searched together.")] = DEFAULTS.batch_size,
    duplicates: Annotated[int, _option(SEARCH, "Outputs per input, named {stem}_{k}.")] = DEFAULTS.duplicates,
    starts: Annotated[
        int, _option(SEARCH, "Random starting points scored; the search starts from the best.")
    ] = DEFAULTS.starts,
    early_stop: Annotated[
        bool, _option(SEARCH, "Stop once every image of a batch meets eps.", "--early-stop")
    ] = DEFAULTS.early_stop,
    save_intermediate: Annotated[
        bool, _option(OUTPUT, "Keep every step's images in {stem}/HR and {stem}/LR.", "--save-intermediate")
    ] = DEFAULTS.save_intermediate,
    save_latent: Annotated[
        bool, _option(OUTPUT, "Keep each output's latent and noise maps as {stem}.npz.", "--save-latent")
    ] = False,
    niqe: Annotated[bool, _option(OUTPUT, "Score outputs of 192 px and more with NIQE.", "--niqe")] = False,
    identity: Annotated[
        bool,
        _option(OUTPUT, "Score each output's identity against its face in the input (dlib; the same "
                "person below 0.6): pip install \"pulse-cli\\[identity]\".", "--identity"),
    ] = False,
    overwrite: Annotated[
        bool, _option(OUTPUT, "Redo images whose output exists (default: skip them: resume).", "--overwrite")
    ] = False,
    resume: Annotated[
        bool,
        _option(OUTPUT, "Keep existing outputs even if made with other options or inputs (default: stop "
                "and say what differs).", "--resume"),
    ] = False,
    shard: Annotated[str | None, _option(OUTPUT, SHARD_HELP, show_default=False)] = None,
    as_json: Annotated[bool, _option(OUTPUT, "Print one JSON summary, no progress.", "--json")] = False,
    aligned: Annotated[
        bool, _option(FACES, "Every input is an aligned face crop: no detection.", "--aligned")
    ] = False,
    detect: Annotated[
        bool, _option(FACES, "Every input is a photo: look for faces even in small squares.", "--detect")
    ] = False,
    input_size: Annotated[
        int | None,
        _option(FACES, "Side every face is searched at (default: chosen per face, the largest of 16/32/64 "
                "that the photo holds; 16 is PULSE's).", min=8, max=64, show_default=False),
    ] = None,
    min_confidence: Annotated[
        float, _option(FACES, "Detections below this confidence are not faces.", min=0.0, max=1.0)
    ] = MIN_CONFIDENCE,
    max_faces: Annotated[
        int | None, _option(FACES, "Upsample at most N faces per photo, highest scores first.", min=1)
    ] = None,
    only_center_face: Annotated[
        bool, _option(FACES, "Upsample only the face nearest each photo's centre.", "--only-center-face")
    ] = False,
    min_face: Annotated[int, _option(FACES, "Smallest face side looked for, in pixels.", min=12)] = MIN_FACE,
    bg_scale: Annotated[
        float | None,
        _option(FACES, "Enlarge photos this much to paste faces back (default: each face at its "
                "upsampled size, the photo at most 4096 px).", min=0.01, show_default=False),
    ] = None,
) -> None:
    """Upsample every face in INPUT_DIR with PULSE into OUTPUT_DIR.

    Inputs (PNG, JPEG, BMP, WebP, GIF, TIFF): aligned square face crops, or photos.
    A crop no larger than the input size (or under 64 px) is searched as it is; its side
    must be the model's resolution divided by a power of two (2 to 512 px
    for the default 1024 px model). A larger square whose one face fills it is
    downscaled to the input size; in anything else MTCNN finds the faces,
    each is aligned as FFHQ was and searched. Writes {stem}.png per
    aligned input; per photo faces/{stem}_{k}.png (the crop searched),
    upsampled/{stem}_{k}.png and photos/{stem}.png (faces pasted back);
    report.json and contact_sheet.png. Files that are not images are
    left out with a note. Existing outputs are skipped, so a rerun resumes
    (a rerun with other options stops and says which differ: --overwrite
    or --resume).
    Exit code 0 when every image worked, 1 when any failed, 2 for usage
    or model errors.

    Example: pulse upsample faces/ -o out/ --steps 100 --seed 1
    """
    try:
        options = SearchOptions(
            seed=seed, loss_str=loss_str, eps=eps, noise_type=noise_type.value,
            num_trainable_noise_layers=num_trainable_noise_layers, tile_latent=tile_latent,
            latent_layout=latent_layout.value if latent_layout else None,
            bad_noise_layers=bad_noise_layers, opt_name=opt_name, learning_rate=learning_rate, steps=steps,
            lr_schedule=lr_schedule.value, save_intermediate=save_intermediate, batch_size=batch_size,
            duplicates=duplicates, early_stop=early_stop, backend=backend and backend.value, starts=starts,
            strategy=strategy.value,
        )
        if aligned and detect:
            raise ValueError("--aligned and --detect contradict each other: choose one")
        faces = FaceOptions(
            mode="aligned" if aligned else "detect" if detect else "auto", input_size=input_size,
            max_faces=max_faces, only_center_face=only_center_face, min_face=min_face,
            min_confidence=min_confidence, bg_scale=bg_scale,
        )
        chosen_shard = Shard.parse(shard) if shard is not None else None
        list_inputs(input_dir)  # fail fast, before any model download
        check_options(options)
        prepare_output_dir(output_dir)
    except ValueError as exc:
        fail(str(exc))
    use_device(device)
    generator = get_generator(model, weights, gaussian_fit)
    if niqe and generator.resolution < NIQE_MIN_SIDE:
        err.print(f"note: no NIQE: it needs outputs of {NIQE_MIN_SIDE} px or more, {model} makes "
                  f"{generator.resolution} px")

    def job(listener: Listener) -> UpsampleReport:
        return upsample_folder(
            generator, input_dir, output_dir, options, overwrite=overwrite, save_latent=save_latent,
            niqe=niqe, identity=identity, shard=chosen_shard, listener=listener, resume=resume, faces=faces,
        )

    report = run_job(job, as_json)
    raise typer.Exit(1 if report.failed else 0)
