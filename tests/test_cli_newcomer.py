"""What a newcomer meets first: `phonein --help`, `phonein serve` in a terminal, the demo."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from phonein import forums
from phonein.cli import COMMANDS, main
from phonein.extensions import db
from phonein.models import Forum, Message, Signup
from phonein.times import utcnow

from .processes import RUN_PHONEIN


def test_help_lists_phonein_commands_only():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:")[1].split()
    for command in COMMANDS:
        assert command in listed
    # Flask's own commands and options, and other extensions' groups, are not phonein's.
    for other in ("routes", "shell", "run", "limiter", "openapi"):
        assert other not in listed
    for option in ("--app", "--env-file", "--debug"):
        assert option not in result.output
    assert "registered on the app" not in result.output
    version = CliRunner().invoke(main, ["--version"])
    assert version.output.startswith("phonein ") and "Flask" not in version.output


def test_flask_internals_are_not_commands_of_phonein(app):
    result = CliRunner().invoke(main, ["routes"])
    assert result.exit_code != 0 and "No such command 'routes'" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_on_a_port_in_use_says_so_in_one_line(app, runner, monkeypatch):
    monkeypatch.delenv("PHONEIN_PUBLIC_URL", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(args=["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: Port {port} on 127.0.0.1 is already in use (another phonein?). Stop it, "
        "or choose another port with --port."
    ]
    assert "Traceback" not in result.output and "phonein on" not in result.output


def _read_until(process: subprocess.Popen[str], wanted: str, seen: list[str]) -> bool:
    """Read the process's stderr until a line holds ``wanted`` (bounded: 60 s)."""
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            return False
        seen.append(line)
        if wanted in line:
            return True
    return False


def test_serve_prints_every_text_of_the_console_backend(tmp_path: Path):
    """A newcomer's `phonein serve` (console SMS) shows each text in the terminal, and no
    Alembic INFO lines on start."""
    import json
    import urllib.request

    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PHONEIN_", "TWILIO_"))},
        "PHONEIN_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "PHONEIN_VERIFY": "off",
        "PHONEIN_CHALLENGE": "off",
    }
    subprocess.run(
        [sys.executable, "-c", RUN_PHONEIN, "demo"], env=env, check=True, capture_output=True
    )
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_PHONEIN, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        assert _read_until(process, "scheduler and SMS sender running", seen), seen
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/forums/car-free-city-centres/signups",
            data=json.dumps(
                {
                    "name": "Dana",
                    "location": "Leeds",
                    "phone": "07400 555111",
                    "question": "What about vans?",
                    "sms_consent": True,
                }
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
        assert _read_until(process, "SMS to +447400555111", seen), seen
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()
    text = "".join(seen)
    assert "Signed up for" in text
    # The confirmation carries no private link (LINK asks for it), so none can reach a log;
    # what the console prints of a LINK answer: tests/test_link_keyword.py.
    assert "Reply LINK" in text and "/manage/" not in text
    assert "[alembic" not in text and "INFO alembic" not in text
    assert "Running job" not in text  # the scheduler's every second stays quiet


def test_demo_never_texts_its_people_and_prints_whole_links(app, runner, monkeypatch):
    monkeypatch.setenv("PHONEIN_PUBLIC_URL", "https://radio.example")
    app.config["PUBLIC_URL"] = "https://radio.example"
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "https://radio.example/forums/car-free-city-centres" in result.output
    assert "https://radio.example/producer/" in result.output
    demo = db.session.scalars(sa.select(Forum).where(Forum.slug == "car-free-city-centres")).one()
    assert not any(s.sms_consent for s in db.session.scalars(sa.select(Signup)))
    # The show goes live with people queued and closes with people waiting: still nothing.
    forums.set_status(demo, "live", utcnow())
    forums.set_status(demo, "closed", utcnow())
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


def test_demo_links_follow_the_default_port_with_a_hint(app, runner, monkeypatch):
    monkeypatch.delenv("PHONEIN_PUBLIC_URL", raising=False)
    app.config["PUBLIC_URL"] = "http://127.0.0.1:5000"
    result = runner.invoke(args=["demo"])
    assert "http://127.0.0.1:5000/forums/car-free-city-centres" in result.output
    assert "--port N" in result.output
