"""The test helpers' free ports: outside the range the kernel hands to outgoing connections."""

import socket

from tests.peers import _ephemeral_ports, free_port


def test_a_free_port_is_never_one_an_outgoing_connection_could_take_first():
    ephemeral = _ephemeral_ports()
    ports = {free_port() for _ in range(50)} | {free_port(socket.SOCK_DGRAM) for _ in range(10)}
    assert not any(port in ephemeral for port in ports)
    assert len(ports) > 40  # picked at random: two workers do not walk the same sequence


def test_a_free_port_can_be_listened_on():
    port = free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
