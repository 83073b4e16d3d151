"""``python -m ganzoo_directions`` runs the ``zoo-dirs`` command line."""

from .cli import main

main()
