"""`python -m pipeline` runs the ship CLI."""

from pipeline.cli import main

main()
