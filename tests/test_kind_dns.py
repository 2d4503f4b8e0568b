"""The dns kind against a real (tiny) authoritative DNS server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from maintd.checks.base import CheckResult, Status
from tests.conftest import run
from tests.dns_support.server import DnsServer, serve
from tests.kinds import REGISTRY, make_target, run_kind


@pytest.fixture(scope="module")
def nameserver() -> Iterator[DnsServer]:
    with serve() as server:
        yield server


@pytest.fixture
def ask(nameserver: DnsServer):  # type: ignore[no-untyped-def]
    def ask(name: str, type_: str = "A", **params: Any) -> CheckResult:
        params = {"name": name, "type": type_, "server": "127.0.0.1", "port": nameserver.port, **params}
        return run(run_kind("dns", params))  # type: ignore[no-any-return]

    return ask


@pytest.mark.parametrize(
    ("name", "type_", "answers"),
    [
        ("www.example.test", "A", "192.0.2.10, 192.0.2.11"),
        ("www.example.test", "AAAA", "2001:db8::10"),
        ("alias.example.test", "CNAME", "www.example.test"),
        ("example.test", "MX", "10 mail.example.test, 20 backup-mail.example.test"),
        ("example.test", "NS", "ns1.example.test, ns2.example.test"),
        ("_sip._tcp.example.test", "SRV", "10 60 5060 sip.example.test"),
        ("192.0.2.10", "PTR", "www.example.test"),
        ("10.2.0.192.in-addr.arpa", "PTR", "www.example.test"),
    ],
)
def test_each_record_type_is_resolved_and_listed(ask, name, type_, answers):
    result = ask(name, type_)
    assert result.status is Status.ok, result.output
    assert result.output.startswith(f"{name} {type_} @127.0.0.1:")
    assert result.output.endswith(f": {answers}")
    assert result.metrics["answers"] == answers.count(",") + 1


def test_an_address_lookup_follows_a_cname_and_reports_time_answers_and_ttl(ask):
    result = ask("alias.example.test", expect=["192.0.2.10", "192.0.2.11"])
    assert result.status is Status.ok
    assert result.output.endswith("2 answers in " + result.output.split(" answers in ")[1])
    assert result.metrics["answers"] == 2
    assert result.metrics["ttl"] == 300
    assert 0 <= result.metrics["time"] < 5


@pytest.mark.parametrize(
    ("name", "type_", "expect"),
    [
        ("www.example.test", "A", ["192.0.2.11"]),
        ("www.example.test", "AAAA", ["2001:0db8::0:10"]),  # addresses compare canonically
        (
            "example.test",
            "MX",
            ["mail.example.test", "20 Backup-Mail.example.test."],
        ),  # target or whole record
        ("_sip._tcp.example.test", "SRV", ["sip.example.test."]),
        ("example.test", "TXT", ["v=spf1 mx -all", "split in two"]),  # character-strings joined
        ("alias.example.test", "CNAME", ["WWW.example.test."]),
    ],
)
def test_expected_answers_match_whatever_their_spelling(ask, name, type_, expect):
    assert ask(name, type_, expect=expect).status is Status.ok


def test_a_missing_expected_answer_is_critical_and_names_it(ask):
    result = ask("www.example.test", expect=["192.0.2.10", "198.51.100.1"])
    assert result.status is Status.critical
    first, second = result.output.splitlines()
    assert first.endswith("missing expected '198.51.100.1'")
    assert second.endswith("192.0.2.10, 192.0.2.11")


def test_expect_any_needs_only_one_of_its_answers(ask):
    assert ask("www.example.test", expect_any=["198.51.100.1", "192.0.2.11"]).status is Status.ok
    result = ask("www.example.test", expect_any=["198.51.100.1", "198.51.100.2"])
    assert result.status is Status.critical
    assert "none of '198.51.100.1', '198.51.100.2' in the answer" in result.output


def test_txt_answers_compare_exactly(ask):
    assert ask("example.test", "TXT", expect=["V=SPF1 MX -ALL"]).status is Status.critical


@pytest.mark.parametrize(
    ("name", "type_", "message"),
    [
        ("nowhere.example.test", "A", "NXDOMAIN, nowhere.example.test. does not exist"),
        ("v4only.example.test", "AAAA", "no AAAA records for v4only.example.test."),
        ("servfail.example.test", "A", "no usable answer: Do53:127.0.0.1@{port} answered SERVFAIL"),
    ],
)
def test_a_failed_lookup_is_critical_with_the_reason(ask, nameserver, name, type_, message):
    result = ask(name, type_)
    assert result.status is Status.critical
    assert (
        result.output
        == f"{name} {type_} @127.0.0.1:{nameserver.port}: {message.format(port=nameserver.port)}"
    )


def test_a_nameserver_that_never_answers_is_critical_at_the_timeout(ask, nameserver):
    result = ask("silent.example.test", timeout="300ms")
    assert result.status is Status.critical
    assert result.output == f"silent.example.test A @127.0.0.1:{nameserver.port}: timed out after 0.3s"


def test_the_run_deadline_bounds_the_lookup(nameserver):
    params = {"name": "silent.example.test", "server": "127.0.0.1", "port": nameserver.port, "tcp": True}
    result = run(run_kind("dns", params, timeout=0.3))
    assert result.status is Status.critical
    assert "timed out after 0.3s" in result.output


def test_a_garbage_answer_is_critical_with_the_parse_error(ask):
    result = ask("garbage.example.test", tcp=True)
    assert result.status is Status.critical
    assert "no usable answer: Do53:127.0.0.1@" in result.output


def test_tcp_is_used_when_asked_and_after_a_truncated_udp_answer(ask, nameserver):
    assert ask("www.example.test", tcp=True).status is Status.ok
    assert nameserver.queries[-1] == ("tcp", "www.example.test.", "A")
    big = ask("big.example.test", "TXT", expect=["039 " + "x" * 60])
    assert big.status is Status.ok, big.output
    assert big.metrics["answers"] == 40
    assert [q[0] for q in nameserver.queries[-2:]] == ["udp", "tcp"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"warn_latency": "5s", "crit_latency": "10s"}, Status.ok),
        ({"warn_latency": 0, "crit_latency": "10s"}, Status.warning),
        ({"warn_latency": 0, "crit_latency": 0}, Status.critical),
    ],
)
def test_lookup_time_is_compared_with_the_latency_thresholds(ask, params, status):
    result = ask("www.example.test", **params)
    assert result.status is status
    assert "(warning at" in result.output


def test_the_name_defaults_to_the_targets_connection_host(nameserver):
    params = {"server": "127.0.0.1", "port": nameserver.port}
    by_host = run(run_kind("dns", params, make_target(connection={"host": "www.example.test"})))
    by_url = run(run_kind("dns", params, make_target(connection={"url": "https://www.example.test/x"})))
    for result in (by_host, by_url):
        assert result.status is Status.ok
        assert result.output.startswith("www.example.test A @127.0.0.1:")


def test_no_name_anywhere_is_unknown():
    result = run(run_kind("dns", {"server": "127.0.0.1"}))
    assert result.status is Status.unknown
    assert result.output == "no name: set params.name or target t1's connection.host"


@pytest.mark.parametrize(
    "bad", [{"type": "ANY"}, {"port": 0}, {"timeout": 0}, {"expect": "192.0.2.1"}, {"nameserver": "x"}]
)
def test_bad_params_are_rejected_by_the_kinds_model(bad):
    with pytest.raises(ValidationError):
        REGISTRY.get("dns").config.model_validate(bad)
