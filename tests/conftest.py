import pytest

from tests.peers import DnsServer
from tests.support.factories import make_cast


@pytest.fixture
def cast(db):
    return make_cast()


@pytest.fixture
def dns_server(settings):
    """Start dnsmasq with the given records and point the project's resolver at it: dns_server(txt=[...])."""
    servers = []

    def start(**records) -> DnsServer:
        server = DnsServer(**records).start()
        servers.append(server)
        settings.DNS_NAMESERVERS = ["127.0.0.1"]
        settings.DNS_PORT = server.port
        settings.DNS_TIMEOUT = 2.0
        return server

    yield start
    for server in servers:
        server.stop()
