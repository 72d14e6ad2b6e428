"""`<app> image build|show` against a stand-in `docker` (the real engine: tests/integration).

The stand-in records its arguments and answers like the Docker CLI: `version`, `build` (with
--iidfile), `image inspect`, `push`. Each case runs the app's console script in a subprocess,
as a user would, with the stand-in first on PATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hypermodel import hml
from hypermodel.errors import DeclarationError
from hypermodel.images import _repository, built_image, record_key, repo_digest

IMAGE_ID = "sha256:" + "ab" * 32
PUSHED = "sha256:" + "cd" * 32

FAKE_DOCKER = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    args = sys.argv[1:]
    state = os.environ["FAKE_DOCKER_STATE"]
    with open(os.path.join(state, "calls.jsonl"), "a") as fh:
        fh.write(json.dumps({{"args": args, "DOCKER_HOST": os.environ.get("DOCKER_HOST")}}) + "\\n")
    if args[0] == "version":
        if os.environ.get("FAKE_DOCKER_DOWN"):
            sys.stderr.write("Cannot connect to the Docker daemon at unix:///nowhere.sock. "
                             "Is the docker daemon running?\\n")
            sys.exit(1)
        print("20.10.24")
    elif args[0] == "build":
        print("Step 1/2 : FROM base")
        print("Step 2/2 : RUN pip install .")
        if os.environ.get("FAKE_DOCKER_BUILD_FAIL"):
            print("ERROR: pip failed")
            sys.exit(1)
        with open(args[args.index("--iidfile") + 1], "w") as fh:
            fh.write("{image_id}")
        print("Successfully built abababababab")
    elif args[:2] == ["image", "inspect"]:
        info = {{"Id": "{image_id}", "Size": 123456, "RepoDigests": []}}
        pushed = os.path.join(state, "pushed")
        if os.path.exists(pushed):
            repo = open(pushed).read()
            info["RepoDigests"] = ["other.example/x@sha256:00", repo + "@{pushed}"]
        print(json.dumps([info]))
    elif args[0] == "push":
        tag = args[1]
        repo = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
        print("The push refers to repository [" + repo + "]")
        with open(os.path.join(state, "pushed"), "w") as fh:
            fh.write(repo)
    else:
        sys.exit("unexpected docker call: " + " ".join(args))
    """
)

APP_MODULE = textwrap.dedent(
    """\
    from hypermodel import hml

    app = hml.HmlApp(name="imgapp", image_url="registry.example/ml/imgapp:1")

    if __name__ == "__main__":
        app.start()
    """
)

GIT = [
    "git",
    "-c",
    "user.name=t",
    "-c",
    "user.email=t@example.invalid",
    "-c",
    "commit.gpgsign=false",
]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """PATH with the stand-in docker first, its state dir, and the app's module on PYTHONPATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable, image_id=IMAGE_ID, pushed=PUSHED))
    docker.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "imgapp.py").write_text(APP_MODULE)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_DOCKER_STATE": str(state),
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "mod"), os.environ.get("PYTHONPATH", "")]),
        "HML_ROOT": str(tmp_path / "root"),
        "DOCKER_HOST": "unix:///tmp/test-docker.sock",
    }


@pytest.fixture
def work_tree(tmp_path: Path) -> tuple[Path, str]:
    """A git work tree with a Dockerfile and one commit; (its path, the commit)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "Dockerfile").write_text("ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n")
    (tree / "pyproject.toml").write_text('[project]\nname = "imgapp"\nversion = "3.0"\n')
    subprocess.run([*GIT, "init", "-q", str(tree)], check=True)
    subprocess.run([*GIT, "-C", str(tree), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(tree), "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return tree, head.stdout.strip()


def imgapp(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgapp", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def calls(env: dict[str, str]) -> list[dict]:
    path = Path(env["FAKE_DOCKER_STATE"]) / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def the_build(env: dict[str, str]) -> list[str]:
    (build,) = [c["args"] for c in calls(env) if c["args"][0] == "build"]
    return build


def pairs(args: list[str], flag: str) -> dict[str, str]:
    found = [args[i + 1] for i, a in enumerate(args) if a == flag]
    return dict(value.split("=", 1) for value in found)


def test_build_passes_the_commit_and_records_the_image(env, work_tree, tmp_path) -> None:
    from hypermodel import __version__

    tree, commit = work_tree
    out = imgapp(
        env, "image", "build", "--tag", "imgapp:dev", "--base-image", "local/py:1", cwd=tree
    )
    assert out.returncode == 0, out.stderr
    # the build log streams to stderr; the summary to stdout
    assert "Step 2/2 : RUN pip install ." in out.stderr
    assert f"built imgapp:dev ({IMAGE_ID}) from commit {commit[:12]}" in out.stdout
    assert "images/imgapp.json" in out.stdout

    build = the_build(env)
    assert build[build.index("--tag") + 1] == "imgapp:dev"
    assert build[build.index("--file") + 1] == str(tree / "Dockerfile")
    assert build[build.index("--network") + 1] == "host"
    assert build[-1] == str(tree)  # the context
    assert pairs(build, "--build-arg") == {
        "BASE_IMAGE": "local/py:1",
        "HML_GIT_COMMIT": commit,
        "HML_VERSION": __version__,  # not hypermodel's source tree: the installed version
    }
    assert pairs(build, "--label") == {
        "org.opencontainers.image.revision": commit,
        "org.opencontainers.image.version": __version__,
    }
    assert all(c["DOCKER_HOST"] == "unix:///tmp/test-docker.sock" for c in calls(env))

    record = built_image(hml.HmlApp(name="imgapp", root=env["HML_ROOT"]))
    assert record is not None
    assert record["tag"] == "imgapp:dev" and record["image_id"] == IMAGE_ID
    assert record["commit"] == commit and record["hypermodel_version"] == __version__
    assert record["base_image"] == "local/py:1" and record["size"] == 123456
    assert "repo_digest" not in record and "dirty" not in record
    assert record["built"].endswith("Z")
    shown = imgapp(env, "image", "show")
    assert shown.returncode == 0 and json.loads(shown.stdout) == record
    assert (Path(env["HML_ROOT"]) / record_key("imgapp")).is_file()


def test_defaults_tag_from_image_url_dockerfile_and_context_options(
    env, work_tree, tmp_path
) -> None:
    tree, _ = work_tree
    other = tmp_path / "Dockerfile.other"
    other.write_text("FROM scratch\n")
    out = imgapp(
        env,
        "image",
        "build",
        "--context",
        str(tree),
        "--dockerfile",
        str(other),
        "--network",
        "default",
        "--build-arg",
        "TRAIN=1",
    )
    assert out.returncode == 0, out.stderr
    build = the_build(env)
    assert build[build.index("--tag") + 1] == "registry.example/ml/imgapp:1"
    assert build[build.index("--file") + 1] == str(other)
    assert "--network" not in build
    assert pairs(build, "--build-arg")["TRAIN"] == "1"
    assert "BASE_IMAGE" not in pairs(build, "--build-arg")  # the Dockerfile's default


def test_a_dirty_tree_is_refused_unless_forced(env, work_tree) -> None:
    tree, commit = work_tree
    (tree / "Dockerfile").write_text("FROM changed\n")
    (tree / "untracked.txt").write_text("untracked files do not count\n")
    refused = imgapp(env, "image", "build", cwd=tree)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: refusing to build") and "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not [c for c in calls(env) if c["args"][0] == "build"]

    forced = imgapp(env, "image", "build", "--force", cwd=tree)
    assert forced.returncode == 0, forced.stderr
    assert "(dirty)" in forced.stdout
    assert "warning: building from a git tree with uncommitted changes (--force)" in forced.stderr
    record = built_image(hml.HmlApp(name="imgapp", root=env["HML_ROOT"]))
    assert record is not None and record["dirty"] is True and record["commit"] == commit


def test_untracked_files_alone_do_not_make_the_tree_dirty(env, work_tree) -> None:
    tree, _ = work_tree
    (tree / "notes.txt").write_text("scratch\n")
    assert imgapp(env, "image", "build", cwd=tree).returncode == 0


def test_push_records_the_registry_digest(env, work_tree) -> None:
    tree, _ = work_tree
    out = imgapp(env, "image", "build", "--push", "--tag", "localhost:5000/ml/imgapp:2", cwd=tree)
    assert out.returncode == 0, out.stderr
    assert "The push refers to repository [localhost:5000/ml/imgapp]" in out.stderr
    assert f"pushed localhost:5000/ml/imgapp@{PUSHED}" in out.stdout
    record = built_image(hml.HmlApp(name="imgapp", root=env["HML_ROOT"]))
    assert record is not None and record["repo_digest"] == f"localhost:5000/ml/imgapp@{PUSHED}"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (
            "no-docker",
            "error: the docker command is not installed (or not on PATH): install Docker",
        ),
        ("engine-down", "error: cannot reach the Docker engine at unix:///tmp/test-docker.sock"),
    ],
)
def test_missing_docker_is_one_line_with_the_fix(env, work_tree, setup, expected) -> None:
    tree, _ = work_tree
    if setup == "no-docker":
        env["PATH"] = str(Path(env["FAKE_DOCKER_STATE"]))  # nothing to run there
        cmd = [sys.executable, "-m", "imgapp", "image", "build"]
        out = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, timeout=60)
    else:
        env["FAKE_DOCKER_DOWN"] = "1"
        out = imgapp(env, "image", "build", cwd=tree)
    assert out.returncode == 1
    assert out.stderr.startswith(expected), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "DOCKER_HOST" in out.stderr


def test_a_failed_build_says_so_and_records_nothing(env, work_tree) -> None:
    tree, _ = work_tree
    env["FAKE_DOCKER_BUILD_FAIL"] = "1"
    out = imgapp(env, "image", "build", cwd=tree)
    assert out.returncode == 1
    assert "ERROR: pip failed" in out.stderr
    assert out.stderr.strip().endswith("error: docker build failed (exit 1); its output is above")
    assert built_image(hml.HmlApp(name="imgapp", root=env["HML_ROOT"])) is None
    shown = imgapp(env, "image", "show")
    assert shown.returncode == 1 and "run `imgapp image build` first" in shown.stderr


def test_outside_git_and_without_a_dockerfile(env, tmp_path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    out = imgapp(env, "image", "build", cwd=plain)
    assert out.returncode == 2 and "no Dockerfile at" in out.stderr
    (plain / "Dockerfile").write_text("FROM scratch\n")
    out = imgapp(env, "image", "build", cwd=plain)
    assert out.returncode == 2 and "cannot read the git commit" in out.stderr


def test_hypermodel_source_tree_gives_its_own_version(tmp_path) -> None:
    from hypermodel.images import hypermodel_version

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "hypermodel"\nversion = "9.8.7"\n')
    assert hypermodel_version(tmp_path) == "9.8.7"


def test_repository_of_a_tag() -> None:
    assert _repository("wines:1") == "wines"
    assert _repository("localhost:5000/ml/wines:1") == "localhost:5000/ml/wines"
    assert _repository("localhost:5000/ml/wines") == "localhost:5000/ml/wines"
    assert _repository("ghcr.io/a/b@sha256:00") == "ghcr.io/a/b"
    info = {"RepoDigests": ["ghcr.io/a/b@sha256:11", "ghcr.io/a/c@sha256:22"]}
    assert repo_digest(info, "ghcr.io/a/c:latest") == "ghcr.io/a/c@sha256:22"


def test_image_is_a_reserved_command_name_and_help_stays_light() -> None:
    app = hml.HmlApp(name="reserved")
    with pytest.raises(DeclarationError):
        app.command("image")(lambda: None)
    code = (
        "import sys; from hypermodel import hml; "
        "app = hml.HmlApp(name='light'); "
        "sys.argv = ['light', '--help']\n"
        "try:\n    app.start()\nexcept SystemExit:\n    pass\n"
        "print('IMAGES', 'hypermodel.images' in sys.modules, 'hypermodel.cli.image' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "image " in out.stdout and "IMAGES False False" in out.stdout
