"""Resolve with dnspython's async resolver (imported when the first dns check runs) and judge the answer."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype
import dns.resolver
import dns.reversename

from maintd.checks.base import CheckResult, RunContext, Status
from maintd.checks.dns import DnsConfig


async def run(cfg: DnsConfig, ctx: RunContext) -> CheckResult:
    name = cfg.name or _connection_host(ctx.target.connection)
    if not name:
        return CheckResult(
            Status.unknown, f"no name: set params.name or target {ctx.target.name}'s connection.host"
        )
    try:
        qname = _query_name(name, cfg.type)
    except (ValueError, dns.exception.DNSException) as exc:
        return CheckResult(Status.unknown, f"{name!r} is not a valid DNS name: {exc}")
    label = f"{name} {cfg.type} @{f'{cfg.server}:{cfg.port}' if cfg.server else 'system resolver'}"
    timeout = min(cfg.timeout.total_seconds(), ctx.seconds_left())
    started = time.perf_counter()
    resolver = await _resolver(cfg, timeout)
    if isinstance(resolver, CheckResult):
        return CheckResult(resolver.status, f"{label}: {resolver.output}")
    try:
        answer = await resolver.resolve(
            qname, cfg.type, tcp=cfg.tcp, lifetime=max(timeout - (time.perf_counter() - started), 0.0)
        )
    except dns.resolver.NXDOMAIN:
        return CheckResult(Status.critical, f"{label}: NXDOMAIN, {qname} does not exist")
    except dns.resolver.NoAnswer:
        return CheckResult(Status.critical, f"{label}: no {cfg.type} records for {qname}")
    except dns.resolver.LifetimeTimeout as exc:
        return CheckResult(Status.critical, f"{label}: timed out after {timeout:g}s{_errors(exc)}")
    except dns.resolver.NoNameservers as exc:
        return CheckResult(Status.critical, f"{label}: no usable answer{_errors(exc)}")
    except dns.exception.DNSException as exc:
        return CheckResult(Status.critical, f"{label}: {exc}")
    elapsed = time.perf_counter() - started
    rrset = answer.rrset
    records = sorted(rrset) if rrset is not None else []  # canonical order: stable output
    answers = [_display(rdata) for rdata in records]
    metrics = {"time": round(elapsed, 6), "answers": float(len(records))}
    if rrset is not None:
        metrics["ttl"] = float(rrset.ttl)
    summary = (
        f"{label}: {len(records)} answer{'' if len(records) == 1 else 's'} in {elapsed * 1000:.1f} ms"
        f"{_thresholds(cfg.warn_latency, cfg.crit_latency)}: {', '.join(answers)}"
    )
    problem = _expectation_problem(cfg, records)
    if problem:
        return CheckResult(Status.critical, f"{label}: {problem}\n{summary}", metrics)
    return CheckResult(_latency_status(elapsed, cfg.warn_latency, cfg.crit_latency), summary, metrics)


def _connection_host(connection: dict[str, object]) -> str | None:
    if connection.get("host"):
        return str(connection["host"])
    if connection.get("url"):
        return urlsplit(str(connection["url"])).hostname
    return None


def _query_name(name: str, rdtype: str) -> dns.name.Name:
    if rdtype == "PTR":
        try:
            return dns.reversename.from_address(name)
        except (ValueError, dns.exception.SyntaxError):
            pass  # already a name such as 10.2.0.192.in-addr.arpa
    return dns.name.from_text(name)


async def _resolver(cfg: DnsConfig, timeout: float) -> dns.asyncresolver.Resolver | CheckResult:
    if cfg.server is None:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.exception.DNSException as exc:
            return CheckResult(Status.unknown, f"no system resolver to ask: {exc}")
    else:
        address = cfg.server
        try:
            ipaddress.ip_address(address)
        except ValueError:
            try:
                async with asyncio.timeout(timeout):
                    infos = await asyncio.get_running_loop().getaddrinfo(
                        cfg.server, cfg.port, type=socket.SOCK_DGRAM
                    )
            except (OSError, TimeoutError) as exc:
                return CheckResult(Status.critical, f"cannot resolve the nameserver {cfg.server}: {exc}")
            address = str(infos[0][4][0])
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [address]
        resolver.port = cfg.port
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def _normalise(text: str) -> str:
    """How answers compare: addresses canonical, names lower-case without the final dot."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        pass
    return " ".join(word if word == "." else word.rstrip(".") for word in text.lower().split())


def _display(rdata: dns.rdata.Rdata) -> str:
    if rdata.rdtype == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    return _normalise(rdata.to_text())


def _forms(rdata: dns.rdata.Rdata) -> set[str]:
    """What an expected value may say to match this answer: MX and SRV also match their target alone."""
    forms = {_display(rdata)}
    if rdata.rdtype == dns.rdatatype.MX:
        forms.add(_normalise(rdata.exchange.to_text()))  # type: ignore[attr-defined]
    elif rdata.rdtype == dns.rdatatype.SRV:
        forms.add(_normalise(rdata.target.to_text()))  # type: ignore[attr-defined]
    return forms


def _expectation_problem(cfg: DnsConfig, records: list[dns.rdata.Rdata]) -> str | None:
    present: set[str] = set().union(*(_forms(rdata) for rdata in records))
    key = (lambda value: value) if cfg.type == "TXT" else _normalise
    missing = [value for value in cfg.expect if key(value) not in present]
    if missing:
        return f"missing expected {', '.join(map(repr, missing))}"
    if cfg.expect_any and not any(key(value) in present for value in cfg.expect_any):
        return f"none of {', '.join(map(repr, cfg.expect_any))} in the answer"
    return None


def _errors(exc: dns.exception.DNSException) -> str:
    """Each nameserver's failure, as dnspython collected them (once each; timeouts go without saying)."""
    described = [
        f"{server} answered {what or type(what).__name__}"
        for server, _, _, what, _ in exc.kwargs["errors"]
        if not isinstance(what, dns.exception.Timeout)
    ]
    return f": {'; '.join(dict.fromkeys(described))}" if described else ""


def _latency_status(elapsed: float, warn: timedelta | None, crit: timedelta | None) -> Status:
    if crit is not None and elapsed >= crit.total_seconds():
        return Status.critical
    if warn is not None and elapsed >= warn.total_seconds():
        return Status.warning
    return Status.ok


def _thresholds(warn: timedelta | None, crit: timedelta | None) -> str:
    parts = [
        f"{what} at {limit.total_seconds() * 1000:g} ms"
        for what, limit in (("warning", warn), ("critical", crit))
        if limit is not None
    ]
    return f" ({', '.join(parts)})" if parts else ""
