"""The project's foundation: packaging files agree, tests cannot reach the network, the CLI starts, paths resolve."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from adu_core import paths
from tests import no_network
from tests.conftest import REPO_ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

CONDA_TO_PYPI = {"pytorch": "torch"}  # conda-forge names that differ from the PyPI distribution
NOT_PACKAGES = {"python", "pip"}


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _python_elsewhere(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python *args`` in ``cwd`` (outside the project), without the project-root/results overrides."""
    env = {k: v for k, v in os.environ.items() if k not in {paths.PROJECT_ROOT_ENV, paths.RESULTS_DIR_ENV}}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


# --- environment.yml <-> pyproject.toml ---------------------------------------------------------------------------


def _pyproject_requirements() -> dict[str, SpecifierSet]:
    project = _pyproject()["project"]
    lines = list(project["dependencies"])
    for extra in ("book", "test"):
        lines += project["optional-dependencies"][extra]
    reqs = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): r.specifier for r in reqs}


def _conda_environment() -> tuple[dict[str, SpecifierSet], str, list[str]]:
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    packages: dict[str, SpecifierSet] = {}
    python, pip_lines = "", []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_lines += dep.get("pip", [])
            continue
        name, _, spec = dep.strip().partition(" ")
        spec = spec.replace(" ", "")
        if name == "python":
            python = spec
        elif name not in NOT_PACKAGES:
            packages[canonicalize_name(CONDA_TO_PYPI.get(name, name))] = SpecifierSet(spec)
    return packages, python, pip_lines


def test_environment_yml_names_the_same_packages_and_ranges_as_pyproject():
    expected = _pyproject_requirements()
    conda, _, _ = _conda_environment()
    assert sorted(conda) == sorted(expected), "environment.yml and pyproject.toml (deps + book + test) differ"
    for name, spec in expected.items():
        assert conda[name] == spec, f"{name}: environment.yml has {conda[name]}, pyproject.toml has {spec}"


def test_environment_yml_python_and_project_install():
    _, python, pip_lines = _conda_environment()
    version = python.lstrip("=")
    assert re.fullmatch(r"3\.\d+", version), f"pin python to a minor version, got {python!r}"
    assert SpecifierSet(_pyproject()["project"]["requires-python"]).contains(version)
    assert "-e ." in pip_lines, "environment.yml must install the project itself (Binder needs it)"


# --- no network in tests -------------------------------------------------------------------------------------------


def _direct_opener() -> urllib.request.OpenerDirector:
    """urllib without proxies from the environment, so the request goes where the test says."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def no_real_sockets(monkeypatch: pytest.MonkeyPatch) -> list:
    """Belt and braces: if the guard ever let a call through, it reaches this stub, never the network."""
    leaked: list = []

    def stub(name):
        def call(*args, **kwargs):
            leaked.append((name, args))
            raise AssertionError(f"the no-network guard let {name}{args!r} through")

        return call

    for name in ("connect", "connect_ex", "create_connection", "getaddrinfo", "gethostbyname"):
        monkeypatch.setitem(no_network._ORIGINAL, name, stub(name))
    return leaked


def test_guard_is_active():
    assert no_network.is_installed()


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        (None, True),
        ("", True),
        ("10.255.255.1", False),
        ("192.0.2.1", False),
        ("0.0.0.0", True),
        ("::", True),
        ("example.com", False),
        ("2001:db8::1", False),
    ],
)
def test_is_local_host(host, local):
    assert no_network.is_local_host(host) is local


@pytest.mark.usefixtures("no_real_sockets")
@pytest.mark.parametrize("address", [("10.255.255.1", 80), ("192.0.2.1", 443)])
def test_connect_to_another_host_is_blocked(address):
    for method in ("connect", "connect_ex"):
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
            pytest.raises(no_network.NetworkBlockedError, match="network access blocked in tests"),
        ):
            getattr(sock, method)(address)
    with pytest.raises(no_network.NetworkBlockedError, match=re.escape(address[0])):
        socket.create_connection(address, timeout=1)
    assert len(no_network.take_blocked()) == 3


@pytest.mark.usefixtures("no_real_sockets")
def test_names_are_not_resolved_and_http_fails_loudly():
    with pytest.raises(no_network.NetworkBlockedError, match="example.com"):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(no_network.NetworkBlockedError, match="example.com"):
        socket.gethostbyname("example.com")
    # urllib turns OSError into URLError; the guard's error is not an OSError, so it is not mistaken for "offline".
    with pytest.raises(no_network.NetworkBlockedError):
        _direct_opener().open("http://example.com/", timeout=1)
    assert no_network.take_blocked()


def test_loopback_http_and_unix_sockets_still_work(tmp_path: Path):
    (tmp_path / "archive.txt").write_text("payload")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            port = server.server_address[1]
            for host in ("127.0.0.1", "localhost"):
                with _direct_opener().open(f"http://{host}:{port}/archive.txt", timeout=10) as response:
                    assert response.read() == b"payload"
        finally:
            server.shutdown()
            thread.join()

    if hasattr(socket, "AF_UNIX"):
        path = str(tmp_path / "s.sock")
        with socket.socket(socket.AF_UNIX) as srv, socket.socket(socket.AF_UNIX) as cli:
            srv.bind(path)
            srv.listen(1)
            cli.connect(path)
    assert no_network.take_blocked() == []


@pytest.mark.usefixtures("no_real_sockets")
def test_a_test_that_reaches_out_fails_even_if_it_swallows_the_error(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_inner="""
        import socket

        def test_raises():
            socket.create_connection(("10.255.255.1", 80), timeout=1)

        def test_swallows():
            try:
                socket.socket().connect(("10.255.255.1", 80))
            except Exception:
                pass

        def test_local_socketpair():
            a, b = socket.socketpair()
            with a, b:
                a.sendall(b"ok")
                assert b.recv(2) == b"ok"
        """
    )
    result = pytester.runpytest_inprocess("-p", "tests.no_network", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*NetworkBlockedError: network access blocked in tests: socket.create_connection*10.255.255.1*",
            "*test_swallows swallowed 1 blocked network attempt*",
        ]
    )
    assert no_network.is_installed()  # the inner session's teardown left the outer guard in place


# --- console script ------------------------------------------------------------------------------------------------


def test_adu_help_via_module():
    proc = subprocess.run(
        [sys.executable, "-m", "adu_core", "--help"], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\brun\b", proc.stdout)


def test_adu_console_script_is_installed():
    script = Path(sys.executable).with_name("adu")
    found = str(script) if script.exists() else shutil.which("adu")
    assert found, "no `adu` console script beside the interpreter or on PATH: install with the README's command"
    proc = subprocess.run([found, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\brun\b", proc.stdout)


# --- paths ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def clean_path_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(paths.PROJECT_ROOT_ENV, raising=False)
    monkeypatch.delenv(paths.RESULTS_DIR_ENV, raising=False)
    return monkeypatch


def _fake_project(root: Path) -> Path:
    (root / "adu_core").mkdir(parents=True)
    (root / "_config.yml").write_text("title: fake\n")
    (root / "book" / "deep").mkdir(parents=True)
    return root


def test_project_root_from_a_different_cwd_in_a_subprocess(tmp_path: Path):
    code = "from adu_core.paths import project_root, results_dir; print(project_root()); print(results_dir('testbed'))"
    proc = _python_elsewhere(["-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    root, results = proc.stdout.splitlines()
    assert Path(root) == REPO_ROOT
    assert Path(results) == REPO_ROOT / "results" / "testbed"


def test_project_root_from_cwd_outside_any_project(tmp_path: Path, clean_path_env):
    clean_path_env.chdir(tmp_path)
    assert paths.project_root() == REPO_ROOT  # found from the package's own location
    clean_path_env.chdir(REPO_ROOT / "book")
    assert paths.project_root() == REPO_ROOT


def test_project_root_walks_up_from_a_notebook_folder(tmp_path: Path, clean_path_env):
    fake = _fake_project(tmp_path / "clone").resolve()
    clean_path_env.chdir(fake / "book" / "deep")
    assert paths.project_root() == fake
    assert paths.results_dir("paper") == fake / "results" / "paper"


def test_project_root_env_override(tmp_path: Path, clean_path_env):
    fake = _fake_project(tmp_path / "elsewhere").resolve()
    clean_path_env.setenv(paths.PROJECT_ROOT_ENV, str(fake))
    assert paths.project_root() == fake
    clean_path_env.setenv(paths.PROJECT_ROOT_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=paths.PROJECT_ROOT_ENV):
        paths.project_root()


def test_results_dir_override_and_bad_tiers(tmp_path: Path, clean_path_env):
    assert paths.results_dir("testbed") == REPO_ROOT / "results" / "testbed"
    clean_path_env.setenv(paths.RESULTS_DIR_ENV, str(tmp_path / "out"))
    assert paths.results_dir("paper") == (tmp_path / "out").resolve() / "paper"
    assert not (tmp_path / "out").exists()  # resolving a path creates nothing
    for bad in ("", ".", "..", "a/b", "a\\b"):
        with pytest.raises(ValueError):
            paths.results_dir(bad)


# --- book configuration, README, setup cell ------------------------------------------------------------------------


def _book_config() -> dict:
    return yaml.safe_load((REPO_ROOT / "_config.yml").read_text())


def test_book_config_fails_on_cell_errors_and_always_executes():
    jb_config = pytest.importorskip("jupyter_book.config")
    config = _book_config()
    jb_config.validate_yaml(config, raise_on_errors=True)
    sphinx_config, _, _ = jb_config.yaml_to_sphinx(config)
    assert sphinx_config["nb_execution_mode"] == "force"  # no execution cache: outputs never go stale
    assert "always_fresh" in sphinx_config["extensions"]
    assert sphinx_config["nb_execution_raise_on_error"] is True
    assert sphinx_config["nb_execution_allow_errors"] is False
    assert sphinx_config["external_toc_exclude_missing"] is True
    assert {".venv", "README.md", "results", "_build"} <= set(sphinx_config["exclude_patterns"])
    buttons = config["launch_buttons"]
    assert buttons["colab_url"].startswith("https://colab.research.google.com")
    assert buttons["binderhub_url"].startswith("https://mybinder.org")


def _toc_files(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["file"]] if "file" in node else []
        return found + [f for value in node.values() for f in _toc_files(value)]
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    return []


def test_toc_pages_exist():
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    assert toc["format"] == "jb-book"
    for page in [toc["root"], *_toc_files(toc)]:
        matches = [p for p in (REPO_ROOT / page).parent.glob(Path(page).name + ".*") if p.suffix in {".md", ".ipynb"}]
        assert page.startswith("book/") and matches, f"_toc.yml lists {page!r}, which is not a page under book/"


def test_setup_cell_installs_from_the_configured_repository():
    source = (REPO_ROOT / "book" / "_setup_cell.py").read_text()
    url = _book_config()["repository"]["url"].rstrip("/")
    assert f'REPOSITORY = "{url}"' in source


def test_setup_cell_runs_where_the_package_is_importable(tmp_path: Path):
    proc = _python_elsewhere([str(REPO_ROOT / "book" / "_setup_cell.py")], tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_readme_has_the_two_commands_that_ci_runs():
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = {
        marker: re.search(rf"<!-- {marker} -->\n```[a-z]*\n(.*?)\n```", readme, re.S) for marker in ("install", "test")
    }
    assert all(blocks.values()), "README.md needs fenced blocks after <!-- install --> and <!-- test -->"
    install, test = (blocks[m].group(1) for m in ("install", "test"))
    # cluster: submitit and Ray, which tests/test_engines.py runs for real
    assert "-m venv .venv" in install and '-e ".[book,test,cluster]"' in install and "jupyter-book build ." in install
    assert "pytest" in test and "ruff check ." in test
    assert "readme_command install" in (REPO_ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_rebuild_shows_changed_inputs_without_a_source_change(tmp_path: Path):
    """A page whose *input* changed (a results file, the data root) shows the new state on the next plain build,
    with the book's own execution settings and extension (no cache replay, no skipped page)."""
    pytest.importorskip("jupyter_book")
    import nbformat

    book = tmp_path / "book"
    (book / "_ext").mkdir(parents=True)
    (book / "_ext" / "always_fresh.py").write_text((REPO_ROOT / "book" / "_ext" / "always_fresh.py").read_text())
    config = _book_config()
    assert config["sphinx"]["local_extensions"] == {"always_fresh": "book/_ext"}
    mini = {"title": "t", "execute": config["execute"], "only_build_toc_files": True,
            "sphinx": {"local_extensions": {"always_fresh": "_ext"}}}  # the same file, relative to this mini book
    (book / "_config.yml").write_text(yaml.safe_dump(mini))
    (book / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"print('value:', open({str(tmp_path / 'input.txt')!r}).read())")]
    nbformat.write(nb, book / "page.ipynb")
    jb = Path(sys.executable).with_name("jupyter-book")
    html = book / "_build" / "html" / "page.html"
    for value in ("first-state", "second-state"):
        (tmp_path / "input.txt").write_text(value)
        subprocess.run([str(jb), "build", str(book)], check=True, capture_output=True, timeout=300)
        assert f"value: {value}" in html.read_text(), value
