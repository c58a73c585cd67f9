"""The ``phonein`` command: a Flask CLI group bound to the app."""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NoReturn

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext
from flask_migrate import upgrade

from . import accounts, privacy, worker
from .database import commit, rollback
from .errors import DomainError
from .models import Role, User
from .times import utcnow


def _create_app() -> Flask:
    from . import create_app

    return create_app()


# What ``phonein --help`` lists: phonein's own commands. Flask's (run, shell, routes) and
# other extensions' (limiter, openapi) stay reachable through ``flask --app wsgi``.
COMMANDS = ("serve", "worker", "db", "users", "tokens", "demo", "purge")
# Loggers that talk on every start at INFO: migrations ("Context impl SQLiteImpl") and the
# scheduler ("Running job", every second). Warnings and errors still show.
# twilio.http_client logs each request's query at INFO: a reconciliation's To=+44… number.
QUIET_LOGGERS = ("alembic", "flask_migrate", "apscheduler", "twilio.http_client")


class PhoneinGroup(FlaskGroup):
    """Flask's CLI group bound to phonein's app, showing phonein's commands and options only.

    The commands themselves are registered on the app's CLI (``init_app``), so that
    ``flask --app wsgi`` offers them too.
    """

    def __init__(self, **extra: Any) -> None:
        super().__init__(
            create_app=_create_app,
            add_default_commands=False,
            add_version_option=False,
            set_debug_flag=False,
            **extra,
        )
        # --app, --env-file and --debug belong to `flask`: phonein knows its app, reads its
        # settings from PHONEIN_* variables and never runs Flask's debug server.
        self.params = [p for p in self.params if p.name not in ("app", "env_file", "debug")]
        self.params.append(
            click.Option(
                ["--version"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                help="Show phonein's version.",
                callback=_print_version,
            )
        )

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) if name in COMMANDS else None


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from importlib.metadata import version

        click.echo(f"phonein {version('phonein')}")
        ctx.exit()


@click.group(cls=PhoneinGroup)
def main() -> None:
    """Run and manage phonein, a broadcaster's live phone-in.

    Settings come from PHONEIN_* environment variables (see the README); `phonein serve`
    runs everything in one process.
    """


def configure_logging() -> None:
    """Print phonein's log (texts and codes of the console backend too) on stderr.

    For the long-running commands, serve and worker; the chatty libraries stay at WARNING.
    """
    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _app() -> Flask:
    """The app this command runs (the object itself: threads outlive the app context)."""
    return click.get_current_context().ensure_object(ScriptInfo).load_app()


def _fail(error: DomainError) -> NoReturn:
    rollback()
    raise click.ClickException(error.message)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@with_appcontext
def serve(host: str, port: int, threads: int) -> None:
    """Serve web app, scheduler and SMS sender in one process."""
    from waitress import create_server

    configure_logging()
    app = _app()
    if not os.environ.get("PHONEIN_PUBLIC_URL"):
        # Links shown to listeners must point where this server actually listens.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        app.config["PUBLIC_URL"] = f"http://{shown}:{port}"
    # Checked before anything is said or started: a port in use is one line, not a
    # traceback after "phonein on http://…".
    try:
        _try_bind(host, port)
        server = create_server(
            app, host=host, port=port, threads=threads, ident="phonein", **waitress_options(app)
        )
    except OSError as error:
        raise click.ClickException(_bind_problem(error, host, port)) from None
    upgrade()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    click.echo(f"phonein on http://{host}:{port}  (database: {url.split('@')[-1]})")
    public = app.config["PUBLIC_URL"]
    click.echo(f"  listeners: {public}/   producers: {public}/producer/")
    stop = _embedded_background(app)
    try:
        server.run()  # until Ctrl-C or SIGTERM; waitress closes its sockets itself
    finally:
        stop()


def _try_bind(host: str, port: int) -> None:
    """Bind host:port the way waitress will, and let go; raise OSError where it cannot.

    Waitress itself fails only after opening its own pipes, which it then leaves open.
    """
    for family, kind, proto, _, address in socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)


def _bind_problem(error: OSError, host: str, port: int) -> str:
    """Say in one line why serve cannot listen on host:port."""
    if error.errno == errno.EADDRINUSE:
        return (
            f"Port {port} on {host} is already in use (another phonein?). Stop it, or choose "
            "another port with --port."
        )
    if error.errno == errno.EACCES:
        return f"Not allowed to listen on port {port}: choose a port above 1023 with --port."
    if error.errno == errno.EADDRNOTAVAIL or isinstance(error, socket.gaierror):
        return f"Cannot listen on {host}: this machine has no such address."
    return f"Cannot listen on {host}:{port}: {error.strerror or error}."


def waitress_options(app: Flask) -> dict[str, Any]:
    """Return waitress's trusted-proxy settings for PROXY_COUNT (none when it is 0).

    Unless told to trust a proxy, waitress drops X-Forwarded-* before the app sees them,
    and every listener then shares the proxy's address (and its rate-limit bucket).
    Waitress keeps the last PROXY_COUNT hops, the ones the app's ProxyFix reads too.
    """
    count = int(app.config["PROXY_COUNT"])
    if count <= 0:
        return {}
    return {
        # Any peer: the proxy is whatever connects, so serve must listen only where the
        # proxy can reach it (docs/security.md). The count bounds what a client can forge.
        "trusted_proxy": "*",
        "trusted_proxy_count": count,
        "trusted_proxy_headers": {
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-forwarded-port",
        },
        "clear_untrusted_proxy_headers": True,
    }


def _embedded_background(app: Flask) -> Callable[[], None]:
    """Start the sender and a background scheduler in this process, unless SCHEDULER=off."""
    from apscheduler.schedulers.background import BackgroundScheduler

    if app.config["SCHEDULER"] != "embedded":
        return lambda: None
    scheduler = BackgroundScheduler(timezone="UTC")
    stop = worker.start(app, threads=int(app.config["SENDER_THREADS"]), scheduler=scheduler)
    scheduler.start()
    click.echo(
        f"scheduler and SMS sender running ({app.config['SMS_BACKEND']}, "
        f"at most {app.config['SMS_RATE']}/s)",
        err=True,
    )
    return stop


@click.command("worker")
@click.option("--threads", type=int, default=None, help="Sender threads (SENDER_THREADS).")
@with_appcontext
def worker_command(threads: int | None) -> None:
    """Run the scheduler and SMS sender, without the web app."""
    import signal

    from apscheduler.schedulers.blocking import BlockingScheduler

    configure_logging()
    app = _app()
    scheduler = BlockingScheduler(timezone="UTC")

    def shutdown(signum: int, frame: object) -> None:
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    stop = worker.start(
        app, threads=threads or int(app.config["SENDER_THREADS"]), scheduler=scheduler
    )
    click.echo(
        f"phonein worker: {app.config['SMS_BACKEND']} SMS, "
        f"at most {app.config['SMS_RATE']}/s across all senders",
        err=True,
    )
    try:
        scheduler.start()
    finally:
        stop()
        click.echo("phonein worker stopped", err=True)


@click.group("users")
def users() -> None:
    """Manage staff accounts."""


def _password(email: str, from_stdin: bool) -> str:
    """Read a password strong enough for ``email``: from stdin once, or ask until it is."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        problem = accounts.password_problem(password, email)
        if problem:
            raise click.ClickException(problem)
        return password
    while True:
        password = str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
        problem = accounts.password_problem(password, email)
        if problem is None:
            return password
        click.echo(f"{problem} Try again.", err=True)


def _user(email: str) -> User:
    try:
        return accounts.required_user(email)
    except DomainError as error:
        _fail(error)


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def users_add(email: str, role: str, password_stdin: bool) -> None:
    """Create a staff account (asks for the password unless --password-stdin)."""
    # Before asking for a password: nobody should type one for an account that exists.
    if accounts.email_taken(email):
        raise click.ClickException(f"{email.strip().lower()} already has an account.")
    password = _password(email.strip().lower(), password_stdin)
    try:
        user = accounts.create_user(email, role, password)
    except DomainError as error:
        _fail(error)
    commit()
    click.echo(f"Created {user.email} ({user.role}).", err=True)


@users.command("list")
@with_appcontext
def users_list() -> None:
    """List staff accounts: email, role, state, live tokens."""
    now = utcnow()
    for user in accounts.list_users():
        live = sum(
            1
            for t in user.tokens
            if t.revoked_at is None and (t.expires_at is None or t.expires_at > now)
        )
        state = "active" if user.is_active else "disabled"
        click.echo(f"{user.email}\t{user.role}\t{state}\t{live} token(s)")


@users.command("disable")
@click.argument("email")
@with_appcontext
def users_disable(email: str) -> None:
    """Disable EMAIL: their sessions end and their tokens are revoked at once."""
    user = _user(email)
    accounts.set_active(user, False, utcnow())
    commit()
    click.echo(f"Disabled {user.email}: sessions ended, tokens revoked.", err=True)


@users.command("enable")
@click.argument("email")
@with_appcontext
def users_enable(email: str) -> None:
    """Enable EMAIL again (revoked tokens stay revoked: create new ones)."""
    user = _user(email)
    accounts.set_active(user, True, utcnow())
    commit()
    click.echo(f"Enabled {user.email}.", err=True)


@users.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def users_set_password(email: str, password_stdin: bool) -> None:
    """Set EMAIL's password (asks until it is strong enough); their sessions end."""
    user = _user(email)
    password = _password(user.email, password_stdin)
    try:
        accounts.set_password(user, password)
    except DomainError as error:
        _fail(error)
    commit()
    click.echo(f"New password set for {user.email}; their sessions have ended.", err=True)


@click.group("tokens")
def tokens() -> None:
    """Manage API tokens."""


@tokens.command("create")
@click.argument("email")
@click.option(
    "--expires",
    "days",
    type=click.IntRange(min=1, max=3650),
    default=None,
    metavar="DAYS",
    help="The token stops working after DAYS days (default: never).",
)
@with_appcontext
def tokens_create(email: str, days: int | None) -> None:
    """Print a new API bearer token for EMAIL, and nothing else, on stdout."""
    user = accounts.user_by_email(email)
    if user is None:
        raise click.ClickException(f"No staff account for {email}: use 'phonein users add'.")
    if not user.is_active:
        raise click.ClickException(f"{user.email} is disabled: 'phonein users enable' first.")
    expires = utcnow() + timedelta(days=days) if days else None
    token = accounts.create_token(user, expires)
    commit()
    click.echo(token)


def _stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


@tokens.command("list")
@click.argument("email", required=False)
@with_appcontext
def tokens_list(email: str | None) -> None:
    """List tokens (never their secret): id, owner, created, expires, last used, state."""
    now = utcnow()
    owner = _user(email) if email else None
    click.echo("id\temail\tcreated\texpires\tlast used\tstate")
    for token in accounts.list_tokens(owner):
        if token.revoked_at is not None:
            state = f"revoked {_stamp(token.revoked_at)}"
        elif token.expires_at is not None and token.expires_at <= now:
            state = "expired"
        else:
            state = "live"
        click.echo(
            f"{token.id}\t{token.user.email}\t{_stamp(token.created_at)}\t"
            f"{_stamp(token.expires_at)}\t{_stamp(token.last_used_at)}\t{state}"
        )


@tokens.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@with_appcontext
def tokens_revoke(token_id: int) -> None:
    """Revoke token ID (from 'tokens list'): it stops working at once."""
    try:
        token = accounts.revoke_token(token_id, utcnow())
    except DomainError as error:
        _fail(error)
    commit()
    click.echo(f"Revoked token {token.id} of {token.user.email}.", err=True)


@click.command("demo")
@with_appcontext
def demo() -> None:
    """Load a demo forum with demo signups (and a past, published one)."""
    from . import demo as demo_data

    upgrade()
    summary = demo_data.load(utcnow(), current_app.config["PUBLIC_URL"])
    commit()
    click.echo(summary)
    if not os.environ.get("PHONEIN_PUBLIC_URL"):
        click.echo(
            "(These links are for `phonein serve` on its default port; with --port N, use "
            "port N. Set PHONEIN_PUBLIC_URL when listeners reach the site elsewhere.)"
        )


@click.command("purge")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=0, max=36500),
    required=True,
    metavar="DAYS",
    help="Erase data of forums closed more than DAYS days ago.",
)
@with_appcontext
def purge(days: int) -> None:
    """Erase personal data of forums closed longer ago than DAYS."""
    count = privacy.purge(utcnow(), days)
    commit()
    click.echo(f"Erased personal data of {count} signup(s) of forums closed over {days} days ago.")


def init_app(app: Flask) -> None:
    for command in (serve, worker_command, users, tokens, demo, purge):
        app.cli.add_command(command)
