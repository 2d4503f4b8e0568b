"""One run: inventory the target's certificates, renew the managed one when due, judge the rest."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from maintd.checks.base import Change, CheckResult, RunContext, Status
from maintd.checks.command import substitute
from maintd.checks.command.process import execute
from maintd.checks.tls.certs import parse_certificates
from maintd.tasks.certificates import AcmeSettings, CertificatesConfig
from maintd.tasks.certificates.acme_issue import AcmeError, Request, issue
from maintd.tasks.certificates.install import Destination, InstallError, check, install, rename_order
from maintd.tasks.certificates.inventory import (
    FILE_LIMIT,
    Item,
    collect,
    fetch,
    file_paths,
    has_endpoint,
    names,
)

_HOOK_OUTPUT = 4096


@dataclass
class Report:
    status: Status = Status.ok
    problems: list[tuple[Status, str]] = field(default_factory=list)
    headline: str = ""  # what was done, when nothing is wrong
    lines: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)

    def problem(self, status: Status, text: str) -> None:
        self.status = max(self.status, status, key=lambda s: s.rank)
        self.problems.append((status, text))

    def result(self, fallback: str) -> CheckResult:
        worst_first = sorted(self.problems, key=lambda p: p[0].rank, reverse=True)
        head = "; ".join(text for _, text in worst_first) or self.headline or fallback
        lines = [line for line in self.lines if line != head]  # the headline is said once
        return CheckResult(self.status, "\n".join([head, *lines]), self.metrics, self.changes)


@dataclass(frozen=True)
class Managed:
    """The acme section with its placeholders filled for this target."""

    settings: AcmeSettings
    dest: Destination
    account_key: Path
    webroot: Path | None
    trust_roots: str | None
    deploy_hook: list[str]

    @property
    def path(self) -> str:
        return str(self.dest.fullchain or self.dest.cert)


async def run(cfg: CertificatesConfig, ctx: RunContext) -> CheckResult:
    try:
        paths = file_paths(cfg, ctx)
        managed = _managed(cfg.acme, ctx) if cfg.acme else None
    except ValueError as exc:
        return CheckResult(Status.unknown, str(exc))
    if not paths and not has_endpoint(cfg, ctx):
        return CheckResult(
            Status.unknown,
            f"no certificate to look at: set params.files or params.host, "
            f"or target {ctx.target.name}'s connection.cert or connection.host",
        )
    if managed is not None and managed.path not in paths:
        paths.append(managed.path)  # what decides the renewal is always in the inventory
    report = Report()
    left = [await _judge(cfg, managed, item, ctx, report) for item in await collect(paths)]
    if has_endpoint(cfg, ctx):  # after a renewal and its deploy hook: the endpoint shows their effect
        left.append(await _judge(cfg, managed, await fetch(cfg, ctx), ctx, report))
    known = [days for days in left if days is not None]
    report.metrics["certificates"] = float(len(left))
    if known:
        report.metrics["days_left"] = round(min(known), 2)
    report.metrics.setdefault("renewed", 0.0)
    renew_days = cfg.renew_before.total_seconds() / 86400
    fallback = f"nothing due: the earliest expires in {min(known):.1f} days" if known else "nothing due"
    return report.result(f"{fallback} (renew below {renew_days:g} days)")


async def _judge(
    cfg: CertificatesConfig, managed: Managed | None, item: Item, ctx: RunContext, report: Report
) -> float | None:
    """Report one certificate, renewing it when it is the managed one and due; its days left."""
    if item.error is not None:
        report.problem(Status.critical, item.error)
        return None
    days = item.days_left(ctx.clock.now())
    renewable = managed is not None and item.path == managed.path
    report.lines.append(_describe(item, days, managed.settings.directory if renewable and managed else None))
    if days >= cfg.renew_before.total_seconds() / 86400:
        return days
    if renewable and managed is not None:
        return await _renew(cfg, managed, item, days, ctx, report)
    if managed is not None and item.path is None:
        if report.metrics.get("renewed"):
            # A reload may take effect a moment after the hook returns: the next run judges it.
            report.lines.append(f"{item.label} still presents the certificate that {_expiry(days)}")
            return days
        why = f"{_expiry(days)} as served (is the renewed {managed.path} deployed?)"
    else:
        why = f"{_expiry(days)}, not renewable (no acme section for it)"
    _not_renewed(cfg, item, days, why, report)
    return days


def _managed(acme: AcmeSettings, ctx: RunContext) -> Managed:
    def one(value: str | None) -> Path | None:
        return Path(substitute([value], ctx)[0]) if value else None

    key = one(acme.key_path)
    assert key is not None
    return Managed(
        acme,
        Destination(one(acme.cert_path), one(acme.chain_path), one(acme.fullchain_path), key),
        Path(substitute([acme.account_key], ctx)[0]),
        one(acme.webroot),
        str(one(acme.trust_roots)) if acme.trust_roots else None,
        substitute(acme.deploy_hook, ctx),
    )


def _describe(item: Item, days: float, directory: str | None) -> str:
    leaf = item.chain[0]
    dns, ips = names(leaf)
    listed = ", ".join(dns + ips) or "no subjectAltName"
    how = f"; renewable through ACME {directory}" if directory else ""
    return (
        f"{item.label}: {listed}; issued by {leaf.issuer.rfc4514_string()}; "
        f"expires {item.expires:%Y-%m-%d %H:%M} UTC ({days:.1f} days left){how}"
    )


def _expiry(days: float) -> str:
    return f"expired {-days:.1f} days ago" if days < 0 else f"expires in {days:.1f} days"


def _not_renewed(cfg: CertificatesConfig, item: Item, days: float, why: str, report: Report) -> None:
    critical = days < cfg.critical_before.total_seconds() / 86400
    limit = (cfg.critical_before if critical else cfg.renew_before).total_seconds() / 86400
    status = Status.critical if critical else Status.warning
    report.problem(status, f"{item.label}: {why} ({status.value} below {limit:g} days)")


async def _renew(
    cfg: CertificatesConfig, managed: Managed, item: Item, days: float, ctx: RunContext, report: Report
) -> float:
    """Renew the managed certificate; the days left afterwards (unchanged when it failed)."""
    acme = managed.settings
    dns, ips = names(item.chain[0])
    domains = acme.domains or dns + ips
    if not domains:
        _not_renewed(cfg, item, days, "cannot renew: it names no DNS or IP name; set acme.domains", report)
        return days
    if ctx.dry_run:
        _plan_renewal(managed, domains, days, report)
        return days
    try:
        chain = await _issue_and_install(managed, domains, ctx, report)
    except (AcmeError, InstallError) as exc:
        _not_renewed(
            cfg, item, days, f"{_expiry(days)}; renewal failed: {exc}; {managed.path} is unchanged", report
        )
        return days
    new_days = (chain[0].not_valid_after_utc - ctx.clock.now()).total_seconds() / 86400
    report.metrics["renewed"] = 1.0
    report.headline = (
        f"renewed {managed.path} through ACME {acme.directory} for {', '.join(domains)}: "
        f"valid until {chain[0].not_valid_after_utc:%Y-%m-%d %H:%M} UTC ({new_days:.1f} days)"
    )
    report.lines.append(report.headline)
    await _deploy(managed, domains, ctx, report)
    return new_days


def _plan_renewal(managed: Managed, domains: list[str], days: float, report: Report) -> None:
    acme, hook = managed.settings, managed.deploy_hook
    written = [str(p) for p in rename_order(managed.dest)]
    report.changes.append(Change("renew", managed.path, {"directory": acme.directory, "domains": domains}))
    report.changes += [Change("write", path) for path in written]
    if hook:
        report.changes.append(Change("deploy-hook", hook[0], {"argv": hook}))
    report.headline = (
        f"dry run: would renew {managed.path} ({_expiry(days)}) for {', '.join(domains)} through ACME "
        f"{acme.directory}, write {', '.join(written)}" + (f", then run {hook!r}" if hook else "")
    )
    report.lines.append(report.headline)


async def _issue_and_install(
    managed: Managed, domains: list[str], ctx: RunContext, report: Report
) -> list[x509.Certificate]:
    acme = managed.settings
    trust = await asyncio.to_thread(_load_trust, managed.trust_roots) if managed.trust_roots else None
    request = Request(
        directory=acme.directory,
        account_key=managed.account_key,
        contact=acme.contact,
        ca_bundle=acme.ca_bundle,
        challenge=acme.challenge,
        webroot=managed.webroot,
        listen=(acme.listen_address, acme.listen_port),
        key_type=acme.key_type,
        domains=domains,
        network_timeout=acme.network_timeout.total_seconds(),
        seconds=_issuing_time(ctx.seconds_left(), acme.hook_timeout.total_seconds()),
    )
    try:
        issued = await asyncio.to_thread(issue, request)
    except AcmeError as exc:
        if exc.account_created:
            report.changes.append(Change("create-account-key", str(managed.account_key)))
        raise
    if issued.account_created:
        report.changes.append(Change("create-account-key", str(managed.account_key)))
    now = ctx.clock.now()
    chain = check(issued.fullchain_pem, issued.key_pem, domains, now, trust)
    report.changes.append(
        Change(
            "issue",
            managed.path,
            {
                "directory": acme.directory,
                "domains": domains,
                "serial": f"{chain[0].serial_number:x}",
                "not_after": chain[0].not_valid_after_utc.isoformat(),
            },
        )
    )

    def recheck(fullchain: bytes, key: bytes) -> None:
        check(fullchain, key, domains, now, trust)

    report.changes += await asyncio.to_thread(install, managed.dest, chain, issued.key_pem, recheck)
    return chain


def _issuing_time(left: float, hook: float) -> float:
    """The run's time left, less what the deploy hook may need (at most half of it)."""
    return max(1.0, left - min(hook, left / 2))


def _load_trust(path: str) -> tuple[list[x509.Certificate], str]:
    label = f"trust_roots {path}"
    try:
        with open(path, "rb") as handle:
            data = handle.read(16 * FILE_LIMIT)
    except OSError as exc:
        raise InstallError(f"cannot read {label}: {exc.strerror or exc}") from None
    try:
        return parse_certificates(data), label
    except ValueError as exc:
        raise InstallError(f"no certificates in {label} ({exc})") from None


async def _deploy(managed: Managed, domains: list[str], ctx: RunContext, report: Report) -> None:
    argv = managed.deploy_hook
    if not argv:
        return
    limit = min(managed.settings.hook_timeout.total_seconds(), max(1.0, ctx.seconds_left()))
    # certbot's deploy-hook variables, so hooks written for certbot work unchanged.
    env = {"RENEWED_LINEAGE": str(Path(managed.path).parent), "RENEWED_DOMAINS": " ".join(domains)}
    try:
        done = await execute(argv, env=env, limit=_HOOK_OUTPUT, tracker=ctx.processes, time_limit=limit)
    except OSError as exc:
        report.problem(
            Status.warning, f"renewed, but cannot start the deploy hook {argv[0]}: {exc.strerror or exc}"
        )
        report.changes.append(Change("deploy-hook", argv[0], {"argv": argv, "started": False}))
        return
    report.changes.append(Change("deploy-hook", argv[0], {"argv": argv, "exit": done.code}))
    if done.code == 0:
        report.lines.append(f"deploy hook {argv!r}: exit 0")
        return
    how = f"timed out after {limit:g}s" if done.code is None else f"exit {done.code}"
    tail = done.output.decode(errors="replace").strip().splitlines()[-1:] or [""]
    report.problem(
        Status.warning, f"renewed, but the deploy hook {argv!r} failed ({how}): {tail[0]}".rstrip(": ")
    )
