"""An app's container image: ``<app> image build`` and the record of what it built.

:func:`build_image` runs the local Docker CLI (``docker build``, honouring ``DOCKER_HOST``) on a
build context that is a git work tree: the commit of its HEAD is passed as the build argument
``HML_GIT_COMMIT`` (the Dockerfile turns it into an env var of the image, since the code in an
image has no ``.git``) and set as the OCI label ``org.opencontainers.image.revision``; the
hypermodel version goes into ``org.opencontainers.image.version``. A tree with uncommitted
changes to tracked files is refused unless forced, as for pipeline runs, because the commit
would not name the code in the image. With ``push`` the image is pushed and the registry's
digest (``repo@sha256:...``) recorded.

What was built is recorded in the app's root, ``images/<app>.json``::

    {"app": "wines", "tag": "hml-wines:test", "image_id": "sha256:...", "commit": "<40 hex>",
     "hypermodel_version": "0.2.0", "built": "2026-12-06T07:26:10Z", ...,
     "repo_digest": "registry.example/wines@sha256:..."}      # only when pushed

and :func:`built_image` reads it back (None when nothing was built). The same record is kept
on this machine too (``~/.cache/hypermodel/images/<app>.json``, or ``$HML_IMAGE_RECORDS``), so
that ``compile``, ``deploy-dev``/``deploy-prod`` and ``inference deploy`` can pin the image by
digest without reading a bucket: :func:`pinned_image` swaps the app's ``image_url`` for the
pushed ``repo@sha256:...`` when the last pushed build is of that repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HypermodelError, NotFoundError, UsageError

if TYPE_CHECKING:
    from .app import HmlApp

REVISION_LABEL = "org.opencontainers.image.revision"
VERSION_LABEL = "org.opencontainers.image.version"
INSTALL_DOCKER = (
    "install Docker (https://docs.docker.com/engine/install/; on Debian: apt-get install "
    "docker.io) and start it, or point DOCKER_HOST at a running engine"
)

Log = Callable[[str], None]


class ImageError(HypermodelError):
    """Docker is missing or unreachable, or a build or push failed."""


class DirtyTreeError(UsageError):
    """The build context has uncommitted changes and the build was not forced."""


def record_key(app_name: str) -> str:
    """Where an app's image record lives in its root."""
    return f"images/{app_name}.json"


def local_record(app_name: str) -> Path:
    """This machine's copy of the app's image record (``$HML_IMAGE_RECORDS``, default
    ``~/.cache/hypermodel/images``)."""
    default = Path.home() / ".cache" / "hypermodel" / "images"
    return Path(os.environ.get("HML_IMAGE_RECORDS") or default) / f"{app_name}.json"


def pinned_image(app: HmlApp, image: str | None) -> tuple[str | None, str | None]:
    """(the image to run, a note or None): ``image`` itself, unless it is the app's own
    ``image_url`` and this machine pushed a build of that repository, whose registry digest
    then replaces the mutable tag. The note says which build, and warns when the code has moved
    on since (a pod would run older code than the tree it was compiled from)."""
    if not image or image != app.image_url:
        return image, None
    try:
        record = json.loads(local_record(app.name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return image, None
    digest = record.get("repo_digest") if isinstance(record, dict) else None
    if not isinstance(digest, str) or _repository(digest) != _repository(image):
        return image, None
    note = f"image {image} pinned to {digest} (built {record.get('built', '?')})"
    from .provenance import code_state

    commit = code_state(full=False).get("commit")
    if commit and record.get("commit") and commit != record["commit"]:
        note += (
            f"; it was built from commit {str(record['commit'])[:12]} and this tree is at "
            f"{commit[:12]}: rebuild with `{app.package_entrypoint} image build --push`"
        )
    return digest, note


def built_image(app: HmlApp) -> dict[str, Any] | None:
    """The record of the app's last ``<app> image build`` (see the module doc), or None."""
    try:
        text = app.storage().read_text(record_key(app.name))
    except NotFoundError:
        return None
    record = json.loads(text)
    return record if isinstance(record, dict) else None


@dataclass
class BuildOptions:
    """What ``<app> image build`` takes; every path relative to the working directory."""

    tag: str | None = None
    context: str | os.PathLike[str] = "."
    dockerfile: str | os.PathLike[str] | None = None  # default: <context>/Dockerfile
    base_image: str | None = None  # the Dockerfile's ARG BASE_IMAGE
    network: str | None = "host"  # docker build --network (None: docker's default)
    build_args: dict[str, str] = field(default_factory=dict)
    push: bool = False
    force: bool = False  # build from a tree with uncommitted changes


def build_image(app: HmlApp, options: BuildOptions, log: Log) -> dict[str, Any]:
    """Build (and push) the app's image, record it in the app's root and return the record.

    ``log`` gets every line of Docker's output (the CLI writes them to stderr)."""
    context = Path(options.context).absolute()
    if not context.is_dir():
        raise UsageError(f"build context {context} is not a directory (--context)")
    dockerfile = Path(options.dockerfile) if options.dockerfile else context / "Dockerfile"
    dockerfile = dockerfile.absolute()
    if not dockerfile.is_file():
        raise UsageError(
            f"no Dockerfile at {dockerfile}: pass --dockerfile PATH, or --context DIR of a "
            "directory that holds one (`hml new project` writes one)"
        )
    tag = options.tag or app.image_url or f"{app.name}:latest"
    docker = docker_cli()
    commit, dirty = git_commit(context, options.force)
    if dirty:
        log(f"warning: building from a git tree with uncommitted changes (--force): {context}")
    version = hypermodel_version(context)

    args = [docker, "build", "--file", str(dockerfile), "--tag", tag]
    if options.network:
        args += ["--network", options.network]
    build_args = dict(options.build_args)
    if options.base_image:
        build_args["BASE_IMAGE"] = options.base_image
    build_args["HML_GIT_COMMIT"] = commit
    build_args["HML_VERSION"] = version
    for name, value in build_args.items():
        args += ["--build-arg", f"{name}={value}"]
    # labels too, so that a Dockerfile without the LABEL line still says what it holds
    args += ["--label", f"{REVISION_LABEL}={commit}", "--label", f"{VERSION_LABEL}={version}"]

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hml-image-") as tmp:
        iidfile = Path(tmp) / "iid"
        _stream([*args, "--iidfile", str(iidfile), str(context)], log, "docker build")
        image_id = iidfile.read_text().strip() if iidfile.exists() else ""
    build_seconds = round(time.monotonic() - started, 1)
    info = inspect_image(docker, image_id or tag)
    record: dict[str, Any] = {
        "app": app.name,
        "tag": tag,
        "image_id": info.get("Id") or image_id,
        "commit": commit,
        "hypermodel_version": version,
        "built": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "build_seconds": build_seconds,
        "base_image": options.base_image,
        "size": info.get("Size"),
    }
    if dirty:
        record["dirty"] = True
    if options.push:
        _stream([docker, "push", tag], log, "docker push")
        record["repo_digest"] = repo_digest(inspect_image(docker, tag), tag)
    text = json.dumps(record, indent=2) + "\n"
    app.storage().write_text(record_key(app.name), text)
    mine = local_record(app.name)
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text(text, encoding="utf-8")
    return record


# -- docker ---------------------------------------------------------------------------------------
def docker_cli() -> str:
    """The ``docker`` executable, checked to reach an engine; ImageError with the fix if not."""
    docker = shutil.which("docker")
    if docker is None:
        raise ImageError(f"the docker command is not installed (or not on PATH): {INSTALL_DOCKER}")
    try:
        probe = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"cannot run {docker}: {exc}") from None
    if probe.returncode != 0:
        where = os.environ.get("DOCKER_HOST") or "the default socket"
        why = _last_line(probe.stderr) or f"exit {probe.returncode}"
        raise ImageError(f"cannot reach the Docker engine at {where} ({why}): {INSTALL_DOCKER}")
    return docker


def inspect_image(docker: str, ref: str) -> dict[str, Any]:
    out = subprocess.run(
        [docker, "image", "inspect", ref], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise ImageError(f"docker image inspect {ref} failed: {_last_line(out.stderr)}")
    found = json.loads(out.stdout)
    return found[0] if found else {}


def repo_digest(info: dict[str, Any], tag: str) -> str:
    """The pushed ``repository@sha256:...`` of ``tag`` among the image's RepoDigests."""
    repository = _repository(tag)
    digests = [str(d) for d in info.get("RepoDigests") or []]
    for digest in digests:
        if digest.split("@", 1)[0] == repository:
            return digest
    raise ImageError(
        f"docker push {tag} finished but the image has no digest for {repository} "
        f"(RepoDigests: {', '.join(digests) or 'none'})"
    )


def _repository(tag: str) -> str:
    """``host:5000/a/b:tag`` -> ``host:5000/a/b`` (a ':' after the last '/' starts the tag)."""
    name = tag.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def _stream(args: Sequence[str], log: Log, what: str) -> None:
    """Run ``args``, passing each output line to ``log``; ImageError when it fails."""
    env = dict(os.environ)
    env.setdefault("DOCKER_CLI_HINTS", "false")
    with subprocess.Popen(
        list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log(line.rstrip("\n"))
        code = proc.wait()
    if code != 0:
        raise ImageError(f"{what} failed (exit {code}); its output is above")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# -- what goes into the image -------------------------------------------------------------------
def git_commit(context: Path, force: bool) -> tuple[str, bool]:
    """(HEAD commit, dirty) of the work tree holding ``context``, read as every record reads it
    (``hypermodel.provenance.code_state``).

    Uncommitted changes to tracked files (untracked files do not count, as for pipeline runs)
    are refused unless ``force``: the image would hold code that no commit names."""
    from .provenance import code_state

    if shutil.which("git") is None:
        raise ImageError("git is not installed: the image records the commit it is built from")
    state = code_state(context)
    if state["source"] != "git":
        why = state.get("why") or "not inside a git work tree"
        raise UsageError(
            f"cannot read the git commit of {context} ({why}): build from a git work tree with "
            "at least one commit (the image records its commit)"
        )
    dirty = bool(state.get("dirty"))
    if dirty and not force:
        raise DirtyTreeError(
            f"refusing to build: the git work tree at {context} has uncommitted changes "
            f"({state.get('changed_files', 0)} file(s)), so the commit baked into the image "
            "would not name its code. Commit your changes, or pass --force (the record then "
            "says dirty=true)"
        )
    return str(state["commit"]), dirty


def hypermodel_version(context: Path) -> str:
    """The hypermodel version the image gets: the context's own when it is hypermodel's source
    tree (its pyproject.toml), else the version installed here (what a project requires)."""
    pyproject = context / "pyproject.toml"
    if pyproject.is_file():
        try:
            import tomllib

            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except (ImportError, ValueError, OSError):
            project = {}
        if project.get("name") == "hypermodel" and isinstance(project.get("version"), str):
            return str(project["version"])
    from . import __version__

    return __version__
