"""``pulse report merge``: one report.json from the reports a sharded run's workers left."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pulse_cli.cli.app import app
from pulse_cli.cli.common import fail, print_summary, summary_json
from pulse_cli.upsample import UpsampleError
from pulse_cli.upsample.merge import merge_shard_reports

report_app = typer.Typer(help="Reports of upsampling runs.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("merge")
def merge(
    output_dir: Annotated[Path, typer.Argument(help="Output folder with report_shard{K}of{N}.json files.")],
    contact_sheet: Annotated[
        bool, typer.Option("--contact-sheet/--no-contact-sheet", help="Draw the merged contact sheet.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary.")] = False,
) -> None:
    """Merge every shard's report in OUTPUT_DIR into report.json (and contact_sheet.png).

    Run it once every worker of a sharded run (--shard, or paddle.distributed.launch) is done:
    the shards must all be there, agree on the model and options, and none may still be running.

    Example: pulse report merge out/
    """
    try:
        report = merge_shard_reports(output_dir, contact_sheet=contact_sheet)
    except UpsampleError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(summary_json(report))
    else:
        print_summary(report)
