import dns.resolver

from accounts.models import AuditEntry


def test_cast_is_audited(cast):
    assert cast.a.domain.can_send
    assert AuditEntry.objects.filter(action="mailbox.create", customer=cast.a.customer).count() == 1


def test_dns_server_answers_txt(dns_server):
    server = dns_server(txt=["example.test,hello world"])
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port
    answer = resolver.resolve("example.test", "TXT")
    assert [b"".join(r.strings) for r in answer] == [b"hello world"]
