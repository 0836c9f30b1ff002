"""The command line's checks in-process: masked URLs, and the one line for a failed bind."""

from __future__ import annotations

import errno
import socket

import pytest

from transakt.cli.checks import Address, check_port, listen_errors, redact_url
from transakt.cli.errors import EXIT_USAGE, CommandError

WALLET = Address(
    "the wallet node", "127.0.0.1", 8080, "TRANSAKT_HOST / --host", "TRANSAKT_PORT / --port"
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://user:pw@db:5432/wallet", "postgresql://user:***@db:5432/wallet"),
        ("postgresql://user@db/wallet", "postgresql://user@db/wallet"),
        ("postgresql://db/wallet?user=u&password=pw", "postgresql://db/wallet?user=u&password=***"),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        (
            "postgresql://postgres@/transakt?host=/run/pg",
            "postgresql://postgres@/transakt?host=/run/pg",
        ),
        ("postgresql://u:pw@db:port/wallet", "(an unparsable URL)"),
    ],
)
def test_urls_are_shown_without_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_lost_race_for_the_port_is_the_same_one_line() -> None:
    # What uvloop raises when the port was taken between the check and the server's bind.
    lost = OSError(errno.EADDRINUSE, "error while attempting to bind on address: in use")
    with pytest.raises(CommandError) as refused, listen_errors(WALLET):
        raise lost
    assert refused.value.exit_code == EXIT_USAGE
    assert str(refused.value) == (
        "cannot listen on 127.0.0.1:8080 for the wallet node (TRANSAKT_PORT / --port): "
        "address already in use"
    )


def test_other_os_errors_keep_their_traceback() -> None:
    with pytest.raises(FileNotFoundError), listen_errors(WALLET):
        raise FileNotFoundError(errno.ENOENT, "no such file")


def test_an_address_not_on_this_machine_names_the_host_setting() -> None:
    address = Address(
        "the wallet node", "192.0.2.1", 8080, "TRANSAKT_HOST / --host", "TRANSAKT_PORT / --port"
    )
    with pytest.raises(CommandError, match=r"\(TRANSAKT_HOST / --host\): cannot assign"):
        check_port(address)


def test_a_free_port_passes_and_stays_free() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check_port(Address("the bank", "127.0.0.1", port, "H", "P"))
    with socket.socket() as again:  # the check let go of it
        again.bind(("127.0.0.1", port))
