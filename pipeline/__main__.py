"""`python -m pipeline` runs the ship CLI."""

from pipeline.entry import main

main()
