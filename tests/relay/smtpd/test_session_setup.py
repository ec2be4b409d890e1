"""A new connection's session: aiosmtpd's constructor finds the commands, AUTH mechanisms and handler hooks
through dir(), which the relay's session and handler answer with their hook names only (relay.smtpd.protocol.HookNames)."""

import asyncio

from aiosmtpd.smtp import SMTP

from relay.smtpd import fairloop
from relay.smtpd.protocol import RelaySMTP
from relay.smtpd.server import Relay, RelayConfig, RelayHandler
from tests.support.loops import in_thread, run


def new_session(relay_cert, listener="submission", implicit=False) -> tuple[Relay, RelaySMTP]:
    relay = Relay(RelayConfig(cert=relay_cert[0], key=relay_cert[1]))

    async def make():
        return relay._factory(listener, implicit)()

    try:
        return relay, in_thread(lambda: asyncio.run(make()))
    finally:
        relay.db.shutdown()


def class_names(cls: type, prefix: str) -> set[str]:
    """What dir() of an instance listed before: every attribute of the class with that prefix."""
    return {name[len(prefix):] for name in dir(cls) if name.startswith(prefix)}


def test_dir_of_a_session_and_of_the_handler_lists_hook_names_only(relay_cert):
    relay, session = new_session(relay_cert)
    assert set(dir(session)) == {name for name in dir(RelaySMTP) if name.startswith(("smtp_", "auth_"))}
    assert "transport" not in dir(session) and "event_handler" not in dir(session)
    assert set(dir(relay.handler)) == {name for name in dir(RelayHandler) if name.startswith(("handle_", "auth_"))}
    assert "db" not in dir(relay.handler)


def test_the_session_finds_every_command_mechanism_and_hook(relay_cert):
    relay, session = new_session(relay_cert)
    commands = class_names(RelaySMTP, "smtp_")
    assert {"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT"} <= commands
    assert set(session._smtp_methods) == commands
    assert session._smtp_methods["MAIL"] == session.smtp_MAIL  # the relay's own, bound to this session
    assert session._smtp_methods["HELP"] == session.smtp_HELP  # aiosmtpd's
    # The handler's AUTH mechanisms replace aiosmtpd's built-in ones of the same name.
    assert set(session._auth_methods) == {"PLAIN", "LOGIN"}
    assert session._auth_methods["PLAIN"].method == relay.handler.auth_PLAIN
    assert not session._auth_methods["PLAIN"].is_builtin
    assert set(session._handle_hooks) == class_names(RelayHandler, "handle_") == {"EHLO", "AUTH", "MAIL", "RCPT",
                                                                                    "DATA"}
    assert session._handle_hooks["RCPT"] == relay.handler.handle_RCPT
    assert session._ehlo_hook_ver == "new"


def test_sessions_are_set_up_each_with_their_own_bound_methods(relay_cert):
    _, first = new_session(relay_cert)
    _, second = new_session(relay_cert, "smtps", implicit=True)
    assert first._smtp_methods["DATA"].__self__ is first
    assert second._smtp_methods["DATA"].__self__ is second
    assert second.implicit_tls and not first.implicit_tls
    assert isinstance(first, SMTP)


def test_a_new_session_greets_its_client_within_the_turn_budget(relay_cert, monkeypatch):
    """A session about to greet its client after the turn has used up its budget lets the loop go round first:
    what was ready before it (another session's work) is served first."""
    monkeypatch.setattr(fairloop, "BUDGET", -1.0)  # every turn is past its budget
    relay = Relay(RelayConfig(cert=relay_cert[0], key=relay_cert[1]))
    order = []

    def factory():
        session = relay._factory("submission", False)()
        connection_made, push = session.connection_made, session.push

        def connected(transport):
            connection_made(transport)  # the session's task is now ready to run
            asyncio.get_running_loop().call_soon(order.append, "other session")

        async def pushed(status):
            order.append(status[:3])
            await push(status)

        session.connection_made, session.push = connected, pushed
        return session

    async def main():  # on the relay's kind of loop (relay.smtpd.fairloop), in a thread of its own
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        greeting = await reader.readline()
        writer.close()
        server.close()
        return greeting

    try:
        greeting = run(main)
    finally:
        relay.db.shutdown()
    assert greeting.startswith(b"220 ")
    assert order[:2] == ["other session", "220"]


def test_help_knows_the_commands_the_relay_implements_itself(relay_cert):
    _, session = new_session(relay_cert)
    for command in ("MAIL", "RCPT", "DATA", "STARTTLS"):
        method = session._smtp_methods[command]
        assert method.__func__ is getattr(RelaySMTP, f"smtp_{command}")  # the relay's own
        assert session._syntax_available(method)
        assert method.__smtp_syntax__ == getattr(SMTP, f"smtp_{command}").__smtp_syntax__
    assert session.smtp_MAIL.__smtp_syntax__.startswith("MAIL FROM:")
