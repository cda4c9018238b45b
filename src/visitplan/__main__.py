"""``python -m visitplan`` runs the CLI."""

from visitplan.cli import main

main()
