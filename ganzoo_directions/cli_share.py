"""The commands that share direction sets: push to and pull from the Hugging Face Hub, import from
and export to other tools' formats (registered on the ``zoo-dirs`` group by :mod:`.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .cli_options import (
    PluginName,
    device_option,
    gen_options_option,
    set_weights_option,
    weights_option,
)


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repo as private (ignored if it exists).")
@click.option("--branch", default=None, help="Upload to this branch (created if needed). [default: main]")
@click.option("--message", default=None, help="Commit message.")
@click.option("--overwrite-card", is_flag=True, help="Replace a README.md that is already on the Hub.")
@click.option("--license", "license_", default="mit", show_default=True, help="License in the card.")
def push(
    source: Path,
    repo_id: str,
    private: bool,
    branch: str | None,
    message: str | None,
    overwrite_card: bool,
    license_: str,
) -> None:
    """Upload a run's direction set to the Hugging Face Hub, with a model card and its pictures.

    SOURCE is a run folder (or a directions.safetensors file); REPO_ID is OWNER/NAME. Needs a token
    with write access (`hf auth login`, or HF_TOKEN). Nothing local is changed.
    """
    from .directions import DirectionSet
    from .hub import parse_repo_ref
    from .hub import push as push_set

    repo_id, revision = parse_repo_ref(repo_id)
    if revision is not None:
        raise click.BadParameter("push takes OWNER/NAME; choose a branch with --branch", param_hint="REPO_ID")
    dset = DirectionSet.load(source)
    folder = source if source.is_dir() else source.parent
    previews = [folder / name for name in ("traversal.png", "traversal.gif")]
    result = push_set(
        dset,
        repo_id,
        previews=previews,
        private=private,
        branch=branch,
        message=message,
        overwrite_card=overwrite_card,
        license=license_,
    )
    click.echo(f"pushed {', '.join(result.uploaded)} to {result.repo_url}")
    if result.card_kept:
        click.echo("kept the README.md already on the Hub (--overwrite-card replaces it)")
    click.echo(f"commit: {result.commit_url}")
    click.echo(f"others can now run: zoo-dirs pull {repo_id}{'@' + branch if branch else ''}")


@click.command()
@click.argument("ref", metavar="REPO_ID[@REVISION]")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Copy the set (and its card and pictures) into this folder. [default: leave it in the "
    "Hugging Face cache]",
)
@set_weights_option
@click.option(
    "--allow-mismatch",
    is_flag=True,
    help="Accept a set made for other generator weights (the latent dimension must still match).",
)
@click.option("--no-check", is_flag=True, help="Only check the file format, not the generator.")
@click.option(
    "--force", is_flag=True, help="Replace the direction set in an --out folder that holds other files."
)
def pull(
    ref: str, out: Path | None, weights: str | None, allow_mismatch: bool, no_check: bool, force: bool
) -> None:
    """Download a direction set from the Hugging Face Hub (cached; HF_HUB_OFFLINE=1 uses the cache).

    Checks the format version and that the set fits the generator you have (its name, latent space and
    dimension, and weights fingerprint). With --out, the files land there only after every check
    passed; a folder holding other files is refused unless --force.
    """
    from .hub import pull as pull_set
    from .plugins import get_registry
    from .pretrained import weights_note
    from .runs import generator_for, quote
    from .safe_text import plain

    def check(dset: Any) -> None:
        generator_for(dset, weights=weights, allow_mismatch=allow_mismatch, where=ref)

    dset, folder = pull_set(ref, out, force=force, check=None if no_check else check)
    made_for = dset.spec.get("generator", {})
    click.echo(  # names from someone's file: printed as text, never as terminal control sequences
        f"{dset.num_directions} directions for {plain(made_for.get('name', '?'))} "
        f"({plain(dset.spec.get('method', {}).get('name', '?'))}) in {folder}"
    )
    if made_for.get("name") in get_registry().generators:
        click.echo(plain(weights_note(get_registry().generator(made_for["name"]).cls, made_for)))
    if dset.labels:
        click.echo("labels: " + ", ".join(f"{k} {text}" for k, text in sorted(dset.labels.items())))
    strongest = ",".join(str(k) for k in dset.ranked()[:3])
    click.echo(f"next: zoo-dirs traverse {quote(folder)} --directions {strongest} --samples 4 --out grid.png")


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "voynov", "ganspace", "vectors"]),
    default="auto",
    show_default=True,
    help="voynov: a GANLatentDiscovery folder or deformator_N.pt; ganspace: a GANSpace .npz; vectors: "
    "InterFaceGAN / e4e .npy / .pt (one direction per file, or (K, D)). auto: from the names.",
)
@click.option(
    "--gen",
    "gen_name",
    type=PluginName("generator"),
    required=True,
    help="The generator the directions are for.",
)
@weights_option
@gen_options_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="New folder for the set (directions.safetensors, traversal.png); a non-empty one is refused.",
)
@device_option
def import_command(
    files: tuple[Path, ...],
    fmt: str,
    gen_name: str,
    weights: str | None,
    gen_options: dict[str, str],
    out: Path,
    device: str,
) -> None:
    """Bring directions shared in another tool's format into a direction set (for traverse, explore,
    edit, evaluate and push). These formats carry no fingerprint: --gen, --weights and -g say which
    generator the directions belong to (a file's W+ layer range sets -g layers unless given). Files
    are read without unpickling."""
    from .interchange import import_set
    from .runs import pick_device

    dset, foreign = import_set(
        list(files), fmt, gen_name, gen_options, out, weights=weights, device=pick_device(device)
    )
    click.echo(
        f"imported {dset.num_directions} {foreign.fmt} directions for {gen_name} into {out} "
        f"(eps-max {foreign.eps_max:g}, {len(dset.labels)} labelled)"
    )
    for note in foreign.notes:
        click.echo(f"note: {note}")


@click.command()
@click.argument("source")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="File to write (.npy, .pt or .npz), or with --split a folder.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["npy", "pt", "ganspace"]),
    default=None,
    help="npy / pt: (K, D) unit rows (labels in OUT.labels.txt); ganspace: a GANSpace-style .npz. "
    "[default: from --out's extension]",
)
@click.option(
    "--split", is_flag=True, help="One (1, D) file per direction, named by its label (InterFaceGAN's layout)."
)
def export(source: str, out: Path, fmt: str | None, split: bool) -> None:
    """Write a direction set (a run folder, a file or a Hub OWNER/NAME) in another tool's format."""
    from .directions import FILE_NAME, DirectionSet
    from .hub import open_source
    from .interchange import export_set, format_for

    fmt = fmt or format_for(out)
    path, _ = open_source(source)
    dset = DirectionSet.load(path / FILE_NAME if path.is_dir() else path)
    written = export_set(dset, out, fmt, split=split)
    click.echo(f"wrote {len(written)} file(s): " + ", ".join(str(p) for p in written[:4]))
