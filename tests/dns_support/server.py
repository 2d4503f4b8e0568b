"""An authoritative DNS responder on 127.0.0.1, UDP and TCP on the same free port.

Answers from a zone written as text, with dnspython's message API; a few names
misbehave on purpose (see ``SILENT``, ``SERVFAIL``, ``GARBAGE``). Threads,
so that one server outlives the event loop of each test.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

SILENT = dns.name.from_text("silent.example.test.")  # never answered
SERVFAIL = dns.name.from_text("servfail.example.test.")  # SERVFAIL
GARBAGE = dns.name.from_text("garbage.example.test.")  # bytes that are no DNS message

ZONE = """
example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60
example.test. 300 IN NS ns1.example.test.
example.test. 300 IN NS ns2.example.test.
example.test. 300 IN MX 10 mail.example.test.
example.test. 300 IN MX 20 backup-mail.example.test.
example.test. 300 IN TXT "v=spf1 mx -all"
example.test. 300 IN TXT "split " "in two"
www.example.test. 300 IN A 192.0.2.10
www.example.test. 300 IN A 192.0.2.11
www.example.test. 300 IN AAAA 2001:db8:0:0::10
alias.example.test. 300 IN CNAME www.example.test.
_sip._tcp.example.test. 300 IN SRV 10 60 5060 sip.example.test.
v4only.example.test. 60 IN A 192.0.2.20
10.2.0.192.in-addr.arpa. 300 IN PTR www.example.test.
""" + "".join(f'big.example.test. 300 IN TXT "{n:03d} {"x" * 60}"\n' for n in range(40))


class DnsServer:
    def __init__(self, zone_text: str = ZONE) -> None:
        self.records: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
        for line in filter(None, map(str.strip, zone_text.splitlines())):
            name, ttl, rdclass, rdtype, data = line.split(None, 4)
            rrset = dns.rrset.from_text(name, int(ttl), rdclass, rdtype, data)
            by_type = self.records.setdefault(rrset.name, {})
            if rrset.rdtype in by_type:
                rrset = dns.rrset.from_rdata_list(rrset.name, rrset.ttl, [*by_type[rrset.rdtype], *rrset])
            by_type[rrset.rdtype] = rrset
        self.stop = threading.Event()
        self.port = 0
        self.queries: list[tuple[str, str, str]] = []  # (transport, name, type), in arrival order

    def answer(self, wire: bytes, max_size: int) -> bytes | None:
        """The reply to one query; None for no reply at all."""
        query = dns.message.from_wire(wire)
        question = query.question[0]
        self.queries.append(
            (("udp" if max_size else "tcp"), question.name.to_text(), dns.rdatatype.to_text(question.rdtype))
        )
        if question.name == SILENT:
            return None
        if question.name == GARBAGE:
            return b"\x00\x01 this is not DNS"
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if question.name == SERVFAIL:
            response.set_rcode(dns.rcode.SERVFAIL)
        else:
            self._fill(response, question.name, question.rdtype)
        size = max_size and max(512, query.payload if query.edns >= 0 else 512)
        try:
            return response.to_wire(max_size=size or 65535)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.AA | dns.flags.TC
            return truncated.to_wire()

    def _fill(self, response: dns.message.Message, name: dns.name.Name, rdtype: int) -> None:
        for _ in range(8):  # follow CNAMEs inside the zone
            node = self.records.get(name)
            if node is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                break
            if rdtype in node:
                response.answer.append(node[rdtype])
                return
            cname = node.get(dns.rdatatype.CNAME)
            if cname is None:
                break
            response.answer.append(cname)
            name = cname[0].target
        response.authority.append(self.records[dns.name.from_text("example.test.")][dns.rdatatype.SOA])


class _Udp(socketserver.BaseRequestHandler):
    server: _UdpServer

    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.dns.answer(data, max_size=512)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _Tcp(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(5)
        while not self.server.dns.stop.is_set():
            header = _read_exactly(conn, 2)
            if header is None:
                return
            wire = _read_exactly(conn, struct.unpack("!H", header)[0])
            if wire is None:
                return
            reply = self.server.dns.answer(wire, max_size=0)
            if reply is None:
                self.server.dns.stop.wait(5)  # hold the connection, say nothing
                return
            conn.sendall(struct.pack("!H", len(reply)) + reply)


def _read_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = conn.recv(size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    dns: DnsServer


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    dns: DnsServer


@contextmanager
def serve(server: DnsServer | None = None) -> Iterator[DnsServer]:
    """Run a DnsServer on 127.0.0.1 (UDP and TCP on one free port) until the block ends."""
    server = server or DnsServer()
    for _attempt in range(50):
        udp = _UdpServer(("127.0.0.1", 0), _Udp)
        try:
            tcp = _TcpServer(("127.0.0.1", udp.server_address[1]), _Tcp)
        except OSError:  # that port is taken for TCP: try another
            udp.server_close()
            continue
        break
    else:
        raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")
    udp.dns = tcp.dns = server
    server.port = udp.server_address[1]
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in (udp, tcp)]
    for thread in threads:
        thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        for s in (udp, tcp):
            s.shutdown()
            s.server_close()
        for thread in threads:
            thread.join(timeout=10)
