"""Direction sets on the Hugging Face Hub: push, pull, model cards, and file downloads for adapters.

Everything goes through ``huggingface_hub`` (its cache, its token handling, ``HF_ENDPOINT``,
``HF_HUB_OFFLINE``). Only safetensors and text are read from the Hub; nothing is unpickled. Failures
become one :class:`HubError` line that says what to do; the local run folder is only ever read.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .directions import FILE_NAME, DirectionSet
from .errors import GanzooError, HubError
from .files import RUN_FILE, describe_os_error
from .safe_text import markdown_text

CARD_NAME = "README.md"
PREVIEW_FILES = ("traversal.png", "traversal.gif")
LIBRARY_NAME = "ganzoo-directions"
HF_SOURCE_PREFIX = "hf:"


def _endpoint() -> str | None:
    """``HF_ENDPOINT`` read at call time (huggingface_hub reads it only when first imported)."""
    return os.environ.get("HF_ENDPOINT") or None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


#: what the Hub accepts as OWNER/NAME: letters, digits, '-', '_', '.', not starting with '-' or '.'
REPO_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}")


#: a branch or tag name (``main``, ``v1.0``, ``refs/pr/3``) or a commit id, as the Hub takes them; a
#: revision is checked before any call, so ``@../../x`` never reaches a path in the cache
REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(?:/[A-Za-z0-9][A-Za-z0-9_.-]{0,127}){0,3}")
#: the largest file of each kind a pull downloads (a direction set is kilobytes to a few MB)
MAX_BYTES = {FILE_NAME: 64 << 20, CARD_NAME: 1 << 20, **dict.fromkeys(PREVIEW_FILES, 64 << 20)}


def check_revision(revision: str | None) -> str | None:
    """``revision`` when it is a branch/tag name or a commit id; otherwise one :class:`HubError`."""
    if revision is not None and (
        REVISION.fullmatch(revision) is None or ".." in revision or revision.endswith((".lock", "."))
    ):
        raise HubError(
            f"{revision!r} is not a Hub revision; expected a branch or tag name (letters, digits, '-', "
            "'_', '.', '/' between parts) or a commit id"
        )
    return revision


def check_repo_path(path: str) -> str:
    """``path`` (a file inside a repo) when every part is a plain name; otherwise one :class:`HubError`."""
    parts = path.split("/")
    if any(
        part in ("", ".", "..") or "\\" in part or any(not c.isprintable() for c in part) for part in parts
    ):
        raise HubError(f"{path!r} is not a file path inside a Hub repo (empty, '.', '..' or odd parts)")
    return path


def looks_like_repo_id(text: str) -> bool:
    """Whether ``text`` has the shape ``OWNER/NAME[@REVISION]``."""
    return REPO_ID.fullmatch(text.partition("@")[0]) is not None


def parse_repo_ref(ref: str) -> tuple[str, str | None]:
    """``"user/name@rev"`` -> ``("user/name", "rev")``; the revision is optional."""
    repo_id, _, revision = ref.partition("@")
    if REPO_ID.fullmatch(repo_id) is None or repo_id.endswith((".git", "..")) or ".." in repo_id:
        raise HubError(
            f"{ref!r} is not a Hub repo id; expected OWNER/NAME or OWNER/NAME@REVISION "
            "(letters, digits, '-', '_' and '.')"
        )
    return repo_id, check_revision(revision or None)


@contextlib.contextmanager
def hub_errors(action: str, repo_id: str) -> Iterator[None]:
    """Turn ``huggingface_hub`` and network exceptions into one actionable :class:`HubError`."""
    from huggingface_hub import errors
    from huggingface_hub.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # our one line replaces the client's retry warnings
    try:
        yield
    except HubError:
        raise
    except errors.LocalEntryNotFoundError as exc:
        if not _offline():  # raised when the Hub is unreachable and the file is not cached
            raise HubError(_unreachable(action, exc.__cause__ or exc)) from None
        raise HubError(
            f"{action}: {repo_id} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
            "connect once to cache it, or unset HF_HUB_OFFLINE"
        ) from None
    except errors.RevisionNotFoundError:
        raise HubError(f"{action}: {repo_id} has no such revision (branch, tag or commit)") from None
    except (errors.RemoteEntryNotFoundError, errors.EntryNotFoundError):
        raise HubError(f"{action}: {repo_id} has no {FILE_NAME}; is it a ganzoo-directions set?") from None
    except errors.RepositoryNotFoundError:
        raise HubError(
            f"{action}: repository {repo_id} not found (or private: log in with `hf auth login` "
            "or set HF_TOKEN)"
        ) from None
    except errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise HubError(
                f"{action}: the Hub refused the request ({status}); set HF_TOKEN to a token with "
                f"{'write' if action.startswith('push') else 'read'} access to {repo_id}"
            ) from None
        if status is not None and status >= 500:
            raise HubError(
                f"{action}: the Hub answered {status} (server error); nothing was changed locally, "
                "try again later"
            ) from None
        raise HubError(f"{action}: the Hub answered {status}: {_first_line(exc)}") from None
    except (ConnectionError, TimeoutError) as exc:
        raise HubError(_unreachable(action, exc)) from None
    except OSError as exc:
        if exc.errno is None:  # socket-level failures without an errno: the network
            raise HubError(_unreachable(action, exc)) from None
        where = " (the Hugging Face cache, HF_HOME)" if exc.errno == errno.ENOSPC else ""
        raise HubError(f"{action}: {describe_os_error(exc)}{where}") from None
    except _transport_errors() as exc:  # the HTTP client's network errors are not OSErrors
        raise HubError(_unreachable(action, exc)) from None
    finally:
        hf_logging.set_verbosity(verbosity)


@functools.cache
def _transport_errors() -> tuple[type[BaseException], ...]:
    """The network-error base classes of the HTTP clients huggingface_hub may use (httpx, or its
    fork httpx2; requests in older releases), those that are installed."""
    import importlib

    found: list[type[BaseException]] = []
    for module_name, attribute in (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("httpcore2", "NetworkError"),
        ("httpcore", "NetworkError"),
        ("requests.exceptions", "ConnectionError"),
        ("requests.exceptions", "Timeout"),
    ):
        try:
            found.append(getattr(importlib.import_module(module_name), attribute))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _unreachable(action: str, exc: BaseException) -> str:
    where = _endpoint() or "https://huggingface.co"
    if _offline():
        advice = "HF_HUB_OFFLINE is set, which forbids network access; unset it to reach the Hub"
    elif action.startswith("push"):
        advice = "check the network (or HF_ENDPOINT)"
    else:
        advice = "check the network (or HF_ENDPOINT), or use HF_HUB_OFFLINE=1 for files already cached"
    return f"{action}: cannot reach the Hub at {where} ({type(exc).__name__}: {_first_line(exc)}); {advice}"


def download(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    action: str = "download",
    max_bytes: int | None = None,
) -> Path:
    """One file from a Hub repo, through the Hugging Face cache (works offline once cached).

    Everything from the Hub is untrusted: the revision and file name are checked before any call, a
    file larger than ``max_bytes`` (the Hub's size, asked first) is not downloaded, and the path the
    client returns must lie inside its cache (a crafted ETag or redirect cannot place bytes elsewhere).
    """
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url

    check_revision(revision)
    check_repo_path(filename)
    with hub_errors(action, repo_id):
        if max_bytes is not None and not _offline():
            url = hf_hub_url(repo_id, filename, revision=revision, endpoint=_endpoint())
            size = get_hf_file_metadata(url).size
            if size is not None and size > max_bytes:
                raise HubError(
                    f"{action}: {repo_id}/{filename} is {size:,} bytes, more than a {filename} can be "
                    f"({max_bytes:,}); not downloaded"
                )
        path = Path(
            hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                endpoint=_endpoint(),
                local_files_only=_offline(),
                library_name=LIBRARY_NAME,
            )
        )
    cache = Path(constants.HF_HUB_CACHE).resolve()
    if not path.resolve().is_relative_to(cache):
        raise HubError(f"{action}: the Hub client returned {path}, outside its cache {cache}; refused")
    if max_bytes is not None and path.stat().st_size > max_bytes:
        raise HubError(f"{action}: {repo_id}/{filename} in the cache is larger than a {filename} can be")
    return path


@dataclass(frozen=True)
class HubFile:
    """A file in a Hub repository, written ``hf:OWNER/NAME/path/in/repo[@REVISION]`` wherever a
    local path is accepted (``--weights``)."""

    repo_id: str
    path: str
    revision: str | None = None

    @classmethod
    def parse(cls, source: str) -> HubFile | None:
        """The reference ``source`` spells, or ``None`` when it is not an ``hf:`` reference."""
        if not source.startswith(HF_SOURCE_PREFIX):
            return None
        ref, _, revision = source[len(HF_SOURCE_PREFIX) :].partition("@")
        parts = ref.split("/")
        if len(parts) < 3 or not all(parts) or REPO_ID.fullmatch("/".join(parts[:2])) is None:
            raise GanzooError(f"{source!r}: expected hf:OWNER/NAME/path/to/file[@REVISION]")
        return cls(
            "/".join(parts[:2]), check_repo_path("/".join(parts[2:])), check_revision(revision or None)
        )

    def sibling(self, name: str) -> HubFile:
        """The file ``name`` in the same folder of the same repo and revision."""
        folder = self.path.rpartition("/")[0]
        return HubFile(self.repo_id, f"{folder}/{name}" if folder else name, self.revision)

    def fetch(self, action: str = "fetch weights") -> Path:
        """Download through the cache (works offline once cached)."""
        return download(self.repo_id, self.path, revision=self.revision, action=action)

    def __str__(self) -> str:
        return f"{HF_SOURCE_PREFIX}{self.repo_id}/{self.path}" + (
            f"@{self.revision}" if self.revision else ""
        )


def fetch_file(source: str) -> Path:
    """A local path, or ``hf:OWNER/NAME/path/in/repo[@REVISION]`` downloaded through the cache.

    Generator adapters use it for their weights, so weights get the same revision pinning, cache and
    offline behaviour as direction sets.
    """
    ref = HubFile.parse(source)
    if ref is None:
        path = Path(source).expanduser()
        if not path.is_file():
            raise GanzooError(f"{source}: no such file (a Hub file is written hf:OWNER/NAME/FILE[@REVISION])")
        return path
    return ref.fetch()


def companion_file(source: str, name: str) -> Path | None:
    """The file ``name`` beside the weights ``source`` (a local file or folder, or a file in the same
    Hub repo folder), or ``None`` when there is none (e.g. ``config.json``, ``args.json``)."""
    ref = HubFile.parse(source)
    if ref is not None:
        try:
            return ref.sibling(name).fetch()
        except GanzooError:
            return None
    local = Path(source).expanduser()
    path = (local if local.is_dir() else local.parent) / name
    return path if path.is_file() else None


# -- model cards ------------------------------------------------------------------------------------
def render_card(dset: DirectionSet, repo_id: str, *, license: str = "mit", preview: str | None = None) -> str:
    """The model card (``README.md``) of a direction set, from ``hub_cards/directions.md``."""
    from importlib.resources import files

    from huggingface_hub import ModelCard, ModelCardData

    spec = dset.spec
    generator = spec.get("generator", {})
    method = spec.get("method", {"name": "unknown", "hyperparameters": {}})
    weights = generator.get("weights") or ""
    try:
        ref = HubFile.parse(weights)
    except GanzooError:
        ref = None
    base_model = ref.repo_id if ref is not None else None
    tags = [
        LIBRARY_NAME,
        "latent-directions",
        "gan",
        "interpretability",
        f"method:{method.get('name')}",
        f"generator:{generator.get('name')}",
    ]
    card_data = ModelCardData(
        library_name=LIBRARY_NAME,
        license=license,
        tags=tags,
        base_model=base_model,
        model_name=f"{method.get('name')} directions for {generator.get('name')}",
    )
    template = files("ganzoo_directions.hub_cards").joinpath("directions.md").read_text(encoding="utf-8")
    card = ModelCard.from_template(
        card_data,
        template_str=template,
        title=f"{dset.num_directions} `{method.get('name')}` directions for `{generator.get('name')}`",
        repo_id=repo_id,
        num_directions=dset.num_directions,
        generator=generator,
        method=method,
        method_summary=spec.get("method_summary", ""),
        settings=spec.get("settings", {}),
        deformator=spec.get("deformator"),
        metrics=spec.get("metrics", {}),
        package_version=spec.get("package_version", "?"),
        created=spec.get("created", "?"),
        preview=preview or "",
        plugins=spec.get("plugins", []),
        labels={k: markdown_text(text) for k, text in dset.labels.items()},
    )
    return str(card)


# -- push -------------------------------------------------------------------------------------------
@dataclass
class PushResult:
    repo_url: str
    commit_url: str
    uploaded: list[str]
    card_kept: bool


def push(
    dset: DirectionSet,
    repo_id: str,
    *,
    previews: list[Path] | None = None,
    private: bool = False,
    branch: str | None = None,
    message: str | None = None,
    overwrite_card: bool = False,
    license: str = "mit",
) -> PushResult:
    """Create ``repo_id`` if needed and upload the set, its card and preview pictures in one commit.

    An existing ``README.md`` on the Hub is kept unless ``overwrite_card``. Files are staged in a
    temporary folder; nothing local is modified.
    """
    from huggingface_hub import HfApi

    api = HfApi(endpoint=_endpoint(), library_name=LIBRARY_NAME)
    previews = [p for p in (previews or []) if p.is_file()]
    with hub_errors("push", repo_id):
        repo_url = str(api.create_repo(repo_id, private=private, exist_ok=True))
        if branch:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        card_exists = api.file_exists(repo_id, CARD_NAME, revision=branch)
        with tempfile.TemporaryDirectory(prefix="ganzoo-push-") as tmp:
            staging = Path(tmp)
            dset.save(staging / FILE_NAME)
            for preview in previews:
                shutil.copyfile(preview, staging / preview.name)
            keep_card = card_exists and not overwrite_card
            if not keep_card:
                preview_name = previews[0].name if previews else None
                card = render_card(dset, repo_id, license=license, preview=preview_name)
                (staging / CARD_NAME).write_text(card, encoding="utf-8")
            uploaded = sorted(p.name for p in staging.iterdir())
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=staging,
                revision=branch,
                commit_message=message or f"Upload {dset.num_directions} directions with ganzoo-directions",
            )
    return PushResult(repo_url, str(commit.commit_url), uploaded, keep_card)


# -- pull -------------------------------------------------------------------------------------------
def pull(
    ref: str,
    out: Path | None = None,
    *,
    device: str = "cpu",
    force: bool = False,
    check: Callable[[DirectionSet], None] | None = None,
) -> tuple[DirectionSet, Path]:
    """Download a direction set (``OWNER/NAME[@REVISION]``) through the cache and check its format.

    With ``out``, the set (and the card and preview, when the repo has them) is copied into that
    folder, which then works with ``zoo-dirs traverse``. The files are gathered in a temporary folder
    beside ``out`` and moved into place only after ``check(dset)`` (e.g. the generator check) passed.
    A folder that already holds other files is refused unless ``force``; one that holds exactly this
    set is reused. Returns the set and the folder holding it.
    """
    repo_id, revision = parse_repo_ref(ref)
    path = download(repo_id, FILE_NAME, revision=revision, action="pull", max_bytes=MAX_BYTES[FILE_NAME])
    dset = DirectionSet.load(path, device=device)
    if check is not None:
        check(dset)
    if out is None:
        return dset, path.parent
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise HubError(f"pull: --out {out} is a file, not a folder")
    if (out / RUN_FILE).is_file():
        raise HubError(
            f"pull: {out} is the run folder of a training run; replacing its direction set would mix two "
            "sets (its checkpoint, reconstructor and metrics are another's), even with --force: choose "
            "another --out"
        )
    existing = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    same_set = (out / FILE_NAME).is_file() and (out / FILE_NAME).read_bytes() == path.read_bytes()
    if existing and not force and not same_set:
        raise HubError(
            f"pull: {out} already holds {', '.join(existing[:4])}{' ...' if len(existing) > 4 else ''}; "
            "choose another --out, or pass --force to replace the direction set there"
        )
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.pull-", dir=parent) as tmp:
            staging = Path(tmp)
            shutil.copyfile(path, staging / FILE_NAME)
            DirectionSet.load(staging / FILE_NAME)  # the copy is complete and readable
            for extra in (CARD_NAME, *PREVIEW_FILES):
                with contextlib.suppress(HubError):
                    shutil.copyfile(
                        download(
                            repo_id, extra, revision=revision, action="pull", max_bytes=MAX_BYTES[extra]
                        ),
                        staging / extra,
                    )
            if not out.exists():
                os.replace(staging, out)
                os.mkdir(staging)  # TemporaryDirectory removes its (now empty) folder
            else:
                for item in staging.iterdir():
                    os.replace(item, out / item.name)
    except OSError as exc:
        raise HubError(f"pull: cannot write {out}: {describe_os_error(exc)}") from None
    return dset, out


def from_pretrained(ref: str, *, revision: str | None = None, device: str = "cpu") -> DirectionSet:
    """``DirectionSet.from_pretrained``: ``OWNER/NAME[@REVISION]`` from the Hub (cached)."""
    repo_id, ref_revision = parse_repo_ref(ref)
    path = download(
        repo_id, FILE_NAME, revision=revision or ref_revision, action="pull", max_bytes=MAX_BYTES[FILE_NAME]
    )
    return DirectionSet.load(path, device=device)


def open_source(
    source: str, out: Path | None = None, *, force: bool = False, copies_in: Path | None = None
) -> tuple[Path, bool]:
    """A command's SOURCE: ``(path, writable)``. A local run folder or direction file is used where
    it is; otherwise ``source`` must be a Hub ``OWNER/NAME[@REV]``, pulled into ``out`` (or, without
    ``out``, into ``copies_in/OWNER--NAME``): a copy of one's own, writable. Without either it stays
    in the Hub cache, which is not to be written to (``writable`` False)."""
    path = Path(source)
    if path.exists():
        return path, True
    if not looks_like_repo_id(source):
        raise GanzooError(f"{source}: no such run folder or file (nor a Hub OWNER/NAME)")
    repo_id, _ = parse_repo_ref(source)
    if out is None and copies_in is not None:
        out = copies_in / repo_id.replace("/", "--")
    try:
        _, folder = pull(source, out, force=force)
    except HubError as exc:
        if "not found" in str(exc):
            raise GanzooError(f"{source}: no such local folder, and no Hub repository {repo_id}") from None
        raise GanzooError(f"{source}: no such local folder; as a Hub repository: {exc}") from None
    return folder, out is not None
