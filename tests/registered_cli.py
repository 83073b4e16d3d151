"""``zoo-dirs`` in a real process whose generator family knows test checkpoints by name.

A first-party family's registry is a class attribute written in its plugin; the registry tests need
one that points at the local Hub server. This launcher sets it from ``ZOO_TEST_REGISTRY`` (JSON:
``{"generator": name, "default": name or null, "entries": [PretrainedWeights fields]}``) and then
runs the real CLI entry point, so resolution, download, checking and recording are the shipped code.

    python -m tests.registered_cli discover --gen sngan ...
"""

from __future__ import annotations

import json
import os

from ganzoo_directions.cli import main
from ganzoo_directions.interfaces import PretrainedWeights
from ganzoo_directions.plugins import get_registry

if __name__ == "__main__":
    spec = json.loads(os.environ["ZOO_TEST_REGISTRY"])
    cls = get_registry().generator(spec["generator"]).cls
    cls.pretrained = tuple(PretrainedWeights(**entry) for entry in spec["entries"])
    cls.default_weights = spec.get("default")
    main()
