"""Fetch or read the certificates, parse them with cryptography, judge them and report."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from cryptography import x509

from maintd.checks.base import CheckResult, RunContext, Status
from maintd.checks.tcp.net import endpoint, hostport
from maintd.checks.tls import TlsConfig
from maintd.checks.tls.certs import Finding, Policy, Verdict, judge, parse_certificates
from maintd.checks.tls.fetch import FetchError, fetch_chain

_DEFAULT_PORTS = {"none": 443, "smtp": 25, "postgres": 5432}
_SUFFIXES = (".pem", ".crt", ".cer", ".der")
_FILE_LIMIT = 1 << 20  # a certificate file larger than this is not one
_BUNDLE_LIMIT = 16 << 20


async def run(cfg: TlsConfig, ctx: RunContext) -> CheckResult:
    trust: tuple[list[x509.Certificate], str] | None = None
    if cfg.verify:
        loaded = await asyncio.to_thread(_load_trust, cfg.ca_file)
        if isinstance(loaded, str):
            return CheckResult(Status.unknown, loaded)
        trust = loaded
    if cfg.files or cfg.directory:
        return await _files(cfg, ctx, trust)
    return await _endpoint(cfg, ctx, trust)


def _policy(cfg: TlsConfig, name: str | None, trust: tuple[list[x509.Certificate], str] | None) -> Policy:
    return Policy(
        warn_days=cfg.warn_days,
        crit_days=cfg.crit_days,
        name=name if cfg.check_name else None,
        expect_issuer=cfg.expect_issuer,
        min_rsa_bits=cfg.min_rsa_bits,
        min_ec_bits=cfg.min_ec_bits,
        allow_weak_signatures=cfg.allow_weak_signatures,
        trust=trust[0] if trust else None,
        trust_label=trust[1] if trust else "",
    )


async def _endpoint(
    cfg: TlsConfig, ctx: RunContext, trust: tuple[list[x509.Certificate], str] | None
) -> CheckResult:
    where = endpoint(cfg.host, cfg.port, ctx.target.connection, _DEFAULT_PORTS[cfg.starttls])
    if isinstance(where, str):
        return CheckResult(Status.unknown, f"{where}, or params.files (target {ctx.target.name})")
    host, port = where
    server_name = cfg.server_name or host
    label = hostport(host, port)
    if cfg.starttls != "none":
        label += f" ({cfg.starttls} STARTTLS)"
    if server_name != host:
        label += f" as {server_name}"
    timeout = min(cfg.timeout.total_seconds(), ctx.seconds_left())
    try:
        presented = await fetch_chain(host, port, server_name, cfg.starttls, timeout)
    except FetchError as exc:
        return CheckResult(Status.critical, f"{label}: {exc}")
    try:
        chain = [x509.load_der_x509_certificate(der) for der in presented.chain]
    except ValueError as exc:
        return CheckResult(Status.critical, f"{label}: the server presented an unreadable certificate: {exc}")
    verdict = judge(chain, _policy(cfg, server_name, trust), ctx.clock.now())
    details = [
        f"{presented.protocol} {presented.cipher}; chain of {len(chain)} as presented"
        + ("" if presented.complete else " (this Python reads only the leaf, not the whole chain)")
        + ":",
        *verdict.details,
    ]
    metrics = {
        "days_left": round(verdict.days_left, 2),
        "chain_length": float(len(chain)),
        "key_bits": verdict.key_bits,
        "time": round(presented.connect_time + presented.handshake_time, 6),
    }
    return _report(label, [("", verdict)], details, metrics)


async def _files(
    cfg: TlsConfig, ctx: RunContext, trust: tuple[list[x509.Certificate], str] | None
) -> CheckResult:
    paths = [Path(name) for name in cfg.files]
    if cfg.directory:
        listed = await asyncio.to_thread(_list_directory, Path(cfg.directory))
        if isinstance(listed, str):
            return CheckResult(Status.critical, listed)
        paths += listed
    loaded = await asyncio.to_thread(_read_all, paths, bool(cfg.directory))
    if cfg.directory and not cfg.files:
        label = f"{cfg.directory} ({len(loaded)} certificate file{'' if len(loaded) == 1 else 's'})"
    else:
        label = str(paths[0]) if len(paths) == 1 else f"{len(paths)} files"
    named = len(paths) > 1 or bool(cfg.directory)  # findings say which file they are about

    def about(path: Path) -> str:
        return f"{path}: " if named else ""

    broken = [Finding(Status.critical, about(path) + why) for path, why in loaded if isinstance(why, str)]
    chains = [(path, chain) for path, chain in loaded if not isinstance(chain, str)]
    if not chains:
        reasons = "; ".join(f.text for f in broken) or f"no certificate files in {cfg.directory}"
        return CheckResult(Status.critical, f"{label}: {reasons}")
    policy = _policy(cfg, cfg.server_name, trust)
    now = ctx.clock.now()
    verdicts = [(about(path), judge(chain, policy, now)) for path, chain in chains]
    details = []
    for (path, chain), (_, verdict) in zip(chains, verdicts, strict=True):
        details.append(f"{path}: {len(chain)} certificate{'s' if len(chain) > 1 else ''}:")
        details += verdict.details
    metrics = {
        "days_left": round(min(v.days_left for _, v in verdicts), 2),
        "chain_length": float(sum(len(chain) for _, chain in chains)),
        "key_bits": min((v.key_bits for _, v in verdicts if v.key_bits), default=0.0),
    }
    if broken:
        verdicts.append(("", Verdict(findings=broken)))
    return _report(label, verdicts, details, metrics)


def _report(
    label: str, verdicts: list[tuple[str, Verdict]], details: list[str], metrics: dict[str, float]
) -> CheckResult:
    """First line: every problem, worst first, then how far the earliest expiry is from its threshold."""
    problems = [
        Finding(f.status, prefix + f.text)
        for prefix, v in verdicts
        for f in v.findings
        if f.status is not Status.ok
    ]
    problems.sort(key=lambda f: f.status.rank, reverse=True)
    status = problems[0].status if problems else Status.ok
    parts = [f.text for f in problems]
    prefix, earliest = min(verdicts, key=lambda pv: pv[1].days_left)
    if earliest.findings and earliest.findings[0].status is Status.ok:
        parts.append(prefix + earliest.findings[0].text)
    return CheckResult(status, "\n".join([f"{label}: {'; '.join(parts)}", *details]), metrics)


def _list_directory(directory: Path) -> list[Path] | str:
    try:
        return sorted(p for p in directory.iterdir() if p.suffix.lower() in _SUFFIXES and p.is_file())
    except OSError as exc:
        return f"{directory}: {exc.strerror or exc}"


def _read_all(paths: list[Path], skip_other_pem: bool) -> list[tuple[Path, list[x509.Certificate] | str]]:
    """Each file's certificates, or why it has none. In a directory, PEM files without any
    certificate (keys, requests) are not certificate files and are skipped."""
    loaded: list[tuple[Path, list[x509.Certificate] | str]] = []
    for path in paths:
        data = _read_bounded(path, _FILE_LIMIT)
        if isinstance(data, str):
            loaded.append((path, data))
            continue
        if skip_other_pem and b"-----BEGIN" in data and b"CERTIFICATE-----" not in data:
            continue
        try:
            loaded.append((path, parse_certificates(data)))
        except ValueError as exc:
            loaded.append((path, f"no certificate in it ({exc})"))
    return loaded


def _read_bounded(path: Path, limit: int) -> bytes | str:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        return exc.strerror or str(exc)
    if len(data) > limit:
        return f"larger than {limit // 1024} KiB: not a certificate file"
    return data


def _load_trust(ca_file: str | None) -> tuple[list[x509.Certificate], str] | str:
    if ca_file:
        path, label = ca_file, f"ca_file {ca_file}"
    else:
        defaults = ssl.get_default_verify_paths()
        path = defaults.cafile or defaults.openssl_cafile
        label = f"the system CA bundle {path}"
    data = _read_bounded(Path(path), _BUNDLE_LIMIT)
    if isinstance(data, str):
        return f"cannot read {label}: {data}; set ca_file"
    try:
        return parse_certificates(data), label
    except ValueError as exc:
        return f"no certificates in {label}: {exc}"
