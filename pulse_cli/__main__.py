"""``python -m pulse_cli`` runs the ``pulse`` command line."""

from pulse_cli.cli import main

main()
