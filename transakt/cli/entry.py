"""The ``transakt`` command line: the parser, the settings, logging, and the dispatch.

Every command builds the one ``Settings`` object once and passes it down. A command's options
(``serve --port 9000``) are settings given on the command line: they override the variable
(``TRANSAKT_PORT``) and the env file, and are validated like them. Every mistake the user has to
fix is one line on stderr and exit code 2, naming the setting.

(The module is not called ``main``: ``transakt.cli.main`` is the function the console script runs.)
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from pydantic import ValidationError

from transakt.bankapi.modes import MODES
from transakt.cli.embedded import EmbeddedError, EmbeddedUnavailable
from transakt.cli.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandError,
    one_line,
)
from transakt.cli.up_nodes import LOCAL_RABBITMQ_URL, MAX_NODES
from transakt.config.settings import InsecureSettings, Settings
from transakt.logs import configure_logging

__all__ = ["build_parser", "describe_validation_error", "load_settings", "main"]

_EPILOG = (
    "Configuration comes from TRANSAKT_* environment variables or a .env file (--env-file "
    "names another); a command's options override both. With no TRANSAKT_DATABASE_URL / "
    "TRANSAKT_REDIS_URL, embedded servers run under TRANSAKT_DATA_DIR (they need the "
    "transakt[embedded] extra)."
)

_SUMMARIES = {
    "up": "run the whole system (wallet node(s), sandbox bank, embedded PostgreSQL and Redis)",
    "serve": "run the wallet node (HTTP API, actors, dashboard)",
    "bank": "run the sandbox bank",
    "worker": "run a background worker",
    "migrate": "apply pending database migrations",
    "reconcile": "check deposits and withdrawals against the bank",
    "operator": "grant a user the operator role (reviews held payments): operator grant EMAIL",
}


# --------------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, whose refusals are one line (usage stays one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _port(variable: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if not 0 <= value <= 65535:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a port number (0-65535) for {variable}"
            )
        return value

    return parse


# Per command: (option, the setting it overrides by flat name, metavar, what it sets).
_OPTIONS: dict[str, list[tuple[str, str, str, str]]] = {
    "serve": [
        ("--host", "host", "HOST", "address to listen on"),
        ("--port", "port", "PORT", "port to listen on"),
    ],
    "bank": [
        ("--host", "bank_host", "HOST", "address to listen on"),
        ("--port", "bank_port", "PORT", "port to listen on"),
        ("--mode", "bank_mode", "MODE", "the outage mode to start in"),
    ],
    "up": [
        ("--port", "port", "PORT", "the (first) wallet node's port"),
        ("--bank-port", "bank_port", "PORT", "the sandbox bank's port"),
        ("--data-dir", "data_dir", "PATH", "where embedded servers, demo accounts, mail are kept"),
    ],
}


def _node_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_NODES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of wallet nodes from 1 to {MAX_NODES}"
        )
    return value


_NODES_HELP = (
    f"run N wallet nodes as one cluster (1-{MAX_NODES}; default 1: one node, no broker): "
    "node-1..node-N on --port, +1, ..., joined by the RabbitMQ at TRANSAKT_RABBITMQ_URL "
    f"(unset: {LOCAL_RABBITMQ_URL}), with a `transakt worker` sending the mail; a bank port "
    "left at its default moves past the nodes' ports"
)


def _add_options(parser: argparse.ArgumentParser, command: str) -> None:
    for option, setting, metavar, text in _OPTIONS.get(command, []):
        variable = f"TRANSAKT_{setting.upper()}"
        kind: Callable[[str], Any] = str
        choices: tuple[str, ...] | None = None
        if setting.endswith("port"):
            kind = _port(variable)
        elif setting.endswith("dir"):
            kind = Path
        elif setting == "bank_mode":
            choices = MODES
            text = f"{text}: {', '.join(MODES)}"
        parser.add_argument(
            option,
            dest=f"set_{setting}",
            metavar=metavar,
            type=kind,
            choices=choices,
            help=f"{text} (overrides {variable})",
        )
    if command == "up":
        parser.add_argument(
            "--nodes",
            type=_node_count,
            default=1,
            metavar="N",
            help=_NODES_HELP,
        )


def _package_version() -> str:
    try:
        return version("transakt")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from transakt import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: global options, then one subcommand per part of the system."""
    parser = _Parser(
        prog="transakt", description="Transakt, a digital wallet backend.", epilog=_EPILOG
    )
    parser.add_argument("--version", action="version", version=f"transakt {_package_version()}")
    env_file_help = "read settings from this file instead of ./.env"
    parser.add_argument("--env-file", type=Path, metavar="PATH", help=env_file_help)
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in _SUMMARIES.items():
        sub = subcommands.add_parser(name, help=summary, description=summary, epilog=_EPILOG)
        # Also after the command; SUPPRESS keeps an absent one from hiding the global one.
        sub.add_argument(
            "--env-file", type=Path, metavar="PATH", default=argparse.SUPPRESS, help=env_file_help
        )
        _add_options(sub, name)
        if name == "operator":
            sub.add_argument("action", choices=["grant"], help="what to do")
            sub.add_argument("email", help="the user's e-mail address")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as options (by flat name), leaving out those not given."""
    return {
        key.removeprefix("set_"): value
        for key, value in vars(args).items()
        if key.startswith("set_") and value is not None
    }


# --------------------------------------------------------------------------------------------
# Settings, logging, signals
# --------------------------------------------------------------------------------------------


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad TRANSAKT_* variable and what is wrong with it."""
    parts = []
    for item in error.errors():
        message = str(item.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        location = "_".join(str(part) for part in item.get("loc", ()))
        parts.append(f"TRANSAKT_{location.upper()}: {message}" if location else message)
    return one_line("; ".join(parts) or str(error))


def load_settings(
    overrides: Mapping[str, Any] | None = None, env_file: Path | None = None
) -> Settings:
    """Build the Settings once, turning configuration mistakes into a CommandError."""
    # Called through a Callable[..., Settings]: without pydantic's mypy plugin, mypy takes
    # Field(default, ...) for a required argument and would reject Settings().
    factory: Callable[..., Settings] = Settings
    values: dict[str, Any] = dict(overrides or {})
    if env_file is not None:
        if not env_file.is_file():
            raise CommandError(f"--env-file {env_file}: no such file", EXIT_USAGE)
        values["_env_file"] = env_file
    try:
        return factory(**values)
    except ValidationError as exc:
        raise CommandError(
            f"invalid settings: {describe_validation_error(exc)}", EXIT_USAGE
        ) from None
    except InsecureSettings as exc:  # in case a future pydantic stops wrapping ValueErrors
        raise CommandError(f"invalid settings: {exc}", EXIT_USAGE) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"--env-file {env_file}: {one_line(exc)}", EXIT_USAGE) from None


def _configure_logging(settings: Settings) -> None:
    # One record per line, control characters escaped: clients cannot forge log lines.
    try:
        configure_logging(settings.log_level, settings.log_format)
    except ValueError as exc:
        raise CommandError(f"invalid settings: TRANSAKT_LOG_LEVEL: {exc}", EXIT_USAGE) from None


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Raising unwinds the `with` blocks, so embedded servers are released on a plain `kill`.
    # Servers that handle signals themselves (aiohttp's run_app) replace this while they run.
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _dispatch(
    command: str,
    settings: Settings,
    env_file: Path | None,
    nodes: int = 1,
    args: argparse.Namespace | None = None,
) -> int:
    if command == "operator":
        from transakt.cli.operators import cmd_operator

        assert args is not None
        return cmd_operator(settings, args.action, args.email)
    if command == "up":
        from transakt.cli.up import cmd_up

        return cmd_up(settings, env_file, nodes)
    from transakt.cli import commands

    handlers: dict[str, Callable[[Settings], int]] = {
        "serve": commands.cmd_serve,
        "bank": commands.cmd_bank,
        "worker": commands.cmd_worker,
        "migrate": commands.cmd_migrate,
        "reconcile": commands.cmd_reconcile,
    }
    return handlers[command](settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the transakt command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    with contextlib.suppress(ValueError):  # not the main thread (embedded use): leave it be
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    env_file: Path | None = args.env_file
    try:
        settings = load_settings(_overrides(args), env_file)
        _configure_logging(settings)
        return _dispatch(args.command, settings, env_file, getattr(args, "nodes", 1), args)
    except CommandError as exc:
        print(f"transakt {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except EmbeddedUnavailable as exc:  # prod mode, or the embedded extra is not installed
        print(f"transakt {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EmbeddedError as exc:
        print(f"transakt {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
