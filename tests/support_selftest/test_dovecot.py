"""Proof that the Dovecot IMAP test server behaves as tests/support/dovecot.py promises."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.support.dovecot import DovecotServer, group_has_live_processes
from tests.support.servers import port_accepts
from tests.support.tls import TestCA

DovecotFactory = Callable[..., DovecotServer]


def make_raw(subject: str, body: str = "hello over loopback") -> bytes:
    return (
        "From: alice@example.test\r\n"
        "To: bob@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@relaydesk.test>\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()


def assert_login_fails(imap: DovecotServer, user: str, password: str) -> None:
    with (
        IMAPClient(imap.host, imap.port, ssl=False, timeout=5) as client,
        pytest.raises(LoginError),
    ):
        client.login(user, password)


@pytest.fixture
def imap(dovecot: DovecotFactory) -> DovecotServer:
    return dovecot(users={"alice": "alice-pw"})


def test_plain_login_append_and_fetch(imap: DovecotServer) -> None:
    uid = imap.append("alice", "INBOX", make_raw("first"), flags=[r"\Seen"])
    assert uid == 1
    with IMAPClient(imap.host, imap.port, ssl=False, timeout=5) as client:
        client.login("alice", "alice-pw")
        capabilities = client.capabilities()
        assert {b"IDLE", b"MOVE", b"UIDPLUS"} <= set(capabilities)
        client.select_folder("INBOX")
        assert client.search(["ALL"]) == [1]
        data = client.fetch([1], ["FLAGS", "BODY.PEEK[]"])
        assert b"\\Seen" in data[1][b"FLAGS"]
        assert data[1][b"BODY[]"] == make_raw("first")
    assert imap.fetch_all("alice", "INBOX") == [make_raw("first")]
    assert imap.folder_uids("alice", "INBOX") == [1]


def test_starttls_announced_and_verified_against_the_test_ca(imap: DovecotServer) -> None:
    with IMAPClient(imap.host, imap.port, ssl=False, timeout=5) as client:
        assert b"STARTTLS" in client.capabilities()
        client.starttls(imap.ssl_context())
        cert = client._imap.sock.getpeercert()  # verified: a dict, not None
        assert cert and ("IP Address", "127.0.0.1") in cert["subjectAltName"]
        client.login("alice", "alice-pw")
        assert client.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 0


def test_implicit_tls_verified_against_the_test_ca(imap: DovecotServer, test_ca: TestCA) -> None:
    assert imap.ca_path == test_ca.bundle_path
    context = ssl.create_default_context(cafile=str(imap.ca_path))
    with IMAPClient("localhost", imap.tls_port, ssl=True, ssl_context=context, timeout=5) as client:
        client.login("alice", "alice-pw")
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_tls_with_an_untrusting_client_fails(imap: DovecotServer) -> None:
    def stranger() -> ssl.SSLContext:
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, but trusts no CA

    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(imap.host, imap.tls_port, ssl=True, ssl_context=stranger(), timeout=5)
    client = IMAPClient(imap.host, imap.port, ssl=False, timeout=5)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(stranger())
    finally:
        try:
            client.shutdown()
        except OSError:
            pass


def test_wrong_password_and_unknown_user_fail(imap: DovecotServer) -> None:
    for user, password in (("alice", "wrong"), ("nobody-here", "x")):
        assert_login_fails(imap, user, password)


def test_users_added_and_changed_while_running(imap: DovecotServer) -> None:
    imap.add_user("bob", "bob-pw")
    with imap.session("bob") as client:
        assert client.list_folders()
    imap.add_user("bob", "new-pw")  # same length as before, within the same second
    assert_login_fails(imap, "bob", "bob-pw")
    with IMAPClient(imap.host, imap.port, ssl=False, timeout=5) as client:
        client.login("bob", "new-pw")
    imap.remove_user("bob")
    assert_login_fails(imap, "bob", "new-pw")


def test_users_are_separate(imap: DovecotServer) -> None:
    imap.add_user("carol", "carol-pw")
    imap.append("alice", "INBOX", make_raw("for alice"))
    assert imap.folder_uids("carol", "INBOX") == []
    assert imap.folder_uids("alice", "INBOX") == [1]


def test_create_folder_and_move(imap: DovecotServer) -> None:
    imap.append("alice", "INBOX", make_raw("one"))
    imap.append("alice", "INBOX", make_raw("two"))
    with imap.session("alice") as client:
        assert b"MOVE" in client.capabilities()
        assert b"UIDPLUS" in client.capabilities()
        client.create_folder("Archive/2026")
        client.select_folder("INBOX")
        client.move([1], "Archive/2026")
        assert client.search(["ALL"]) == [2]
    assert imap.fetch_all("alice", "Archive/2026") == [make_raw("one")]
    assert imap.folder_uids("alice", "INBOX") == [2]
    assert set(imap.folders("alice")) >= {"INBOX", "Archive", "Archive/2026"}


def test_append_creates_missing_folder(imap: DovecotServer) -> None:
    assert imap.append("alice", "Sent", make_raw("sent one")) == 1
    assert imap.append("alice", "Sent", make_raw("sent two")) == 2
    assert "Sent" in imap.folders("alice")
    assert imap.fetch_all("alice", "Sent") == [make_raw("sent one"), make_raw("sent two")]


def test_idle_sees_exists_from_another_connection(imap: DovecotServer) -> None:
    with imap.session("alice") as idler:
        idler.select_folder("INBOX")
        idler.idle()
        started = time.monotonic()
        appender = threading.Thread(target=imap.append, args=("alice", "INBOX", make_raw("pushed")))
        appender.start()
        responses: list[tuple[object, ...]] = []
        while time.monotonic() - started < 3 and not any(
            len(r) > 1 and r[1] == b"EXISTS" for r in responses
        ):
            responses += idler.idle_check(timeout=0.5)
        idler.idle_done()
        appender.join(5)
        assert (1, b"EXISTS") in responses, responses
        assert time.monotonic() - started < 3


def test_restart_keeps_ports_mail_and_uidvalidity(imap: DovecotServer) -> None:
    imap.append("alice", "INBOX", make_raw("before restart"))
    imap.append("alice", "Kept", make_raw("kept"))
    before = (imap.uidvalidity("alice", "INBOX"), imap.uidvalidity("alice", "Kept"))
    ports = (imap.port, imap.tls_port)
    connected = imap.client()
    connected.login("alice", "alice-pw")
    connected.select_folder("INBOX")

    imap.stop()
    assert not port_accepts(imap.host, imap.port)
    assert not port_accepts(imap.host, imap.tls_port)
    with pytest.raises((OSError, IMAPClient.Error, IMAPClient.AbortError)):
        connected.noop()  # the open session was dropped, not left running

    imap.start()
    assert (imap.port, imap.tls_port) == ports
    after = (imap.uidvalidity("alice", "INBOX"), imap.uidvalidity("alice", "Kept"))
    assert after == before
    assert imap.fetch_all("alice", "INBOX") == [make_raw("before restart")]
    assert imap.append("alice", "INBOX", make_raw("after restart")) == 2


def test_stop_leaves_no_process_and_close_removes_files(dovecot: DovecotFactory) -> None:
    started = time.monotonic()
    server = dovecot(users={"alice": "pw"})
    assert time.monotonic() - started < 5  # about 0.03 s here; generous for slow CI
    server.append("alice", "INBOX", make_raw("x"))
    pid = server.pid
    assert pid is not None and group_has_live_processes(pid)
    stopping = time.monotonic()
    server.close()
    assert time.monotonic() - stopping < 5
    assert not group_has_live_processes(pid)
    assert not server.directory.exists()
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=1).close()


def test_two_servers_side_by_side(dovecot: DovecotFactory) -> None:
    first, second = dovecot(users={"alice": "pw"}), dovecot(users={"alice": "pw"})
    assert len({first.port, first.tls_port, second.port, second.tls_port}) == 4
    first.append("alice", "INBOX", make_raw("only in first"))
    assert second.folder_uids("alice", "INBOX") == []
