"""The built wheel is the product: it carries templates, config, static files, migrations and
compiled catalogues, and `phonein serve` from it serves every page from any folder (no
checkout needed)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIP = [sys.executable, "-m", "pip", "--quiet"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # From a clean copy: setuptools reuses ./build, so files dropped from the package
    # configuration would still be found in a checkout that was built before.
    source = out / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "instance", "*.egg-info", "__pycache__"
        ),
    )
    subprocess.run(
        [*PIP, "wheel", str(source), "--no-deps", "--no-build-isolation", "--wheel-dir", str(out)],
        check=True,
        cwd=out,
        timeout=180,
    )
    (built,) = out.glob("phonein-*.whl")
    return built


def test_the_wheel_carries_templates_config_static_files_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        "templates": sorted(
            p.relative_to(ROOT).as_posix() for p in ROOT.glob("templates/**/*.html")
        ),
        "config": ["config/defaults.py", "config/example.env"],
        "static": sorted(
            p.relative_to(ROOT / "phonein").as_posix() for p in ROOT.glob("phonein/static/*")
        ),
        "migrations": sorted(
            p.relative_to(ROOT / "phonein").as_posix()
            for p in ROOT.glob("phonein/migrations/**/*")
            if p.is_file() and "__pycache__" not in p.parts
        ),
    }
    # The catalogues: every .po, and the .mo the build compiled from it (setup.py).
    catalogues = sorted(
        p.relative_to(ROOT / "phonein").as_posix()
        for p in ROOT.glob("phonein/translations/*/LC_MESSAGES/*.po")
    )
    shipped["catalogues"] = catalogues + [name[:-3] + ".mo" for name in catalogues]
    assert len(catalogues) >= 8
    assert len(shipped["templates"]) > 10
    for group, files in shipped.items():
        for name in files:
            assert f"phonein/{name}" in names, f"{group}: phonein/{name} is not in the wheel"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_phonein_serve_from_the_installed_wheel_serves_every_page(
    wheel: Path, tmp_path: Path
) -> None:
    """Installed away from the repository, the embedded server runs from another folder."""
    target = tmp_path / "site"
    subprocess.run(
        [*PIP, "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        timeout=120,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **os.environ,
        # The installed copy comes first; the dependencies come from this interpreter.
        "PYTHONPATH": str(target),
        "PHONEIN_DATABASE_URL": f"sqlite:///{tmp_path / 'phonein.sqlite3'}",
        "PHONEIN_SMS_BACKEND": "console",
    }
    run = [sys.executable, "-c", "from phonein.cli import main; main()"]
    where = subprocess.run(
        [sys.executable, "-c", "import phonein; print(phonein.__file__)"],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(target)), "the test must run the installed copy"
    subprocess.run([*run, "demo"], env=env, cwd=elsewhere, check=True, timeout=120)
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [*run, "serve", "--port", str(port)], env=env, cwd=elsewhere, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        pages = {
            "/": "Car-free city centres",
            "/forums/car-free-city-centres": 'name="phone"',
            "/forums/four-day-week-verdict": "four-day week",
            "/producer/login": 'type="password"',
            "/static/app.css": "{",
            "/static/queue.js": "function",
            "/api/v1/openapi.json": '"openapi"',
        }
        for path, expected in pages.items():
            status, body = _get(base + path)
            assert status == 200, path
            assert expected.lower() in body.lower(), path
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
