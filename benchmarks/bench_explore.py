"""Slider-to-image latency of `zoo-dirs explore`, against the floor: one bare generator render.

Measured in one process, after warm-up, as medians of interleaved rounds (as bench_step.py):

- ``floor``: ``generator.render(z)`` of the shown samples, nothing else;
- ``update``: what one slider move costs on the server: ``Explorer.render`` (latents from the seed, the
  combined shift of every slider, the render, the PNG-ready image); ``update / floor`` is the
  explorer's own overhead;
- ``http``: the same update through the running Gradio app over HTTP (``gradio_client``, the call
  the page makes), and ``+ fetch``: with the image file fetched too, as the browser then does: what a
  user waits for between moving a slider and the new image, minus the browser's drawing. Target:
  under 100 ms at 1 sample on a CPU.

Once, before those: ``open``, what building the page costs (the first image and every strip of the
first page: 1 + 5 x sliders renders), and for a generator with live options (truncation, a W+
range) ``option change``, the first render after a live option changes (the variant is built from
the loaded weights; later renders of it cost an update).

    python benchmarks/bench_explore.py                       # the shipped GAN, CPU, 1 and 8 samples
    python benchmarks/bench_explore.py --source runs/x --device cuda
    zoo-dirs discover --gen stylegan2 -g size=256 --random-weights --method sefa --out runs/sg256
    python benchmarks/bench_explore.py --source runs/sg256 --samples 1,4 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ganzoo_directions.directions import DirectionSet
from ganzoo_directions.explore import Explorer, build_app, variants_of
from ganzoo_directions.interfaces import RunSettings
from ganzoo_directions.runs import RunRequest, execute, generator_for, pick_device


def medians(fns: dict, warmup: int, repeats: int, rounds: int = 3) -> dict[str, float]:
    """Median seconds per call of each function over interleaved rounds."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--source", default=None, help="run folder or direction file [default: a SeFa set of sngan-sprites]"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samples", default="1,8", help="comma-separated sample counts")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="time a set made for other weights than the generator finds (a set made before random "
        "weights were seeded, say)",
    )
    args = parser.parse_args()
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(args.source) if args.source else Path(tmp) / "run"
        if args.source is None:
            settings = RunSettings(num_directions=16, steps=0, run_dir=source, device=device)
            execute(RunRequest("sngan-sprites", "sefa", {}, None, {}, settings), rca_pairs=16)
        dset = DirectionSet.load(source, device=device)
        generator = generator_for(dset, device=device, allow_mismatch=args.allow_mismatch)
        explorer = Explorer(dset, variants_of(generator), magnitude=3.0)
        values = [1.5] * len(explorer.directions)  # every slider moved: the most work an update does

        from gradio_client import Client

        started = time.perf_counter()
        app = build_app(explorer)
        once = {"open_s": time.perf_counter() - started}
        floats = [name for name, option in explorer.live.items() if isinstance(option.default, float)]
        if floats:  # e.g. truncation: the variant shares the loaded weights
            name = floats[0]
            started = time.perf_counter()
            explorer.render(0, 1, values, {name: float(explorer.defaults[name]) * 0.5})
            once["option_change_s"] = time.perf_counter() - started
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        url = f"http://127.0.0.1:{port}/"
        client = Client(url, verbose=False, download_files=False)
        fetching = Client(url, verbose=False, download_files=tempfile.mkdtemp(dir=tmp))
        options = [explorer.defaults[name] for name in explorer.live]
        rows = []
        for samples in [int(s) for s in args.samples.split(",")]:
            z = explorer.latents(0, samples, generator)

            @torch.no_grad()
            def floor(z=z):
                generator.render(z)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()

            def update(samples=samples):
                explorer.render(0, samples, values)

            def http(samples=samples, client=client):
                client.predict(0, samples, *options, 0, *values, api_name="/rerender")  # page 0

            def fetch(samples=samples):
                http(samples, fetching)

            fns = {"floor": floor, "update": update, "http": http, "fetch": fetch}
            m = medians(fns, warmup=3, repeats=args.repeats)
            rows.append(
                {
                    "samples": samples,
                    "floor_ms": 1e3 * m["floor"],
                    "update_ms": 1e3 * m["update"],
                    "http_ms": 1e3 * m["http"],
                    "http_fetch_ms": 1e3 * m["fetch"],
                    "update_over_floor": m["update"] / m["floor"],
                    "http_over_update": m["http"] / m["update"],
                }
            )
        app.close()
    if args.json:
        print(json.dumps({"device": str(device), "threads": torch.get_num_threads(), **once, "rows": rows}))
        return
    print(f"device {device}, {torch.get_num_threads()} threads, {len(explorer.directions)} sliders moved")
    print(", ".join(f"{name[:-2].replace('_', ' ')} {value:.2f} s" for name, value in once.items()))
    print("| samples | floor (render) | update (server) | update / floor | HTTP | + fetch | HTTP / update |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['samples']} | {r['floor_ms']:.1f} ms | {r['update_ms']:.1f} ms "
            f"| {r['update_over_floor']:.2f}x | {r['http_ms']:.1f} ms | {r['http_fetch_ms']:.1f} ms "
            f"| {r['http_over_update']:.2f}x |"
        )


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main()
