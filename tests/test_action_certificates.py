"""The certificates kind: an inventory renewed end to end against Debian's pebble ACME server on loopback."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from maintd.checks.base import CheckResult, Status
from maintd.checks.tls.certs import parse_certificates, verify_chain
from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.store.models import AlertRow, IncidentRow
from maintd.tasks.certificates.install import Destination, InstallError, install
from tests.acme_support import Pebble, free_port, pebble
from tests.conftest import T0, run
from tests.kinds import make_target, run_kind
from tests.manual_runs import action_events, run_by_hand
from tests.tls_support.certs import DAY, Issued, root, write_pem
from tests.tls_support.servers import tls_server

NAMES = ("www.maintd.example.test", "maintd.example.test")


@pytest.fixture
def ca() -> Issued:
    return root("maintd test issuer")


@pytest.fixture
def acme_server(tmp_path: Path) -> Iterator[Pebble]:
    """pebble with real http-01: it resolves every name to 127.0.0.1 and fetches the token."""
    with pebble(tmp_path / "pebble", real_http01=True) as instance:
        yield instance


def now_clock() -> FakeClock:
    """pebble issues at the wall-clock time, so renewal tests run the kind's clock from there."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


def live_certificate(directory: Path, ca: Issued, now: datetime, days_left: float) -> Path:
    """directory/fullchain.pem (leaf and issuer) and privkey.pem, expiring ``days_left`` after ``now``."""
    directory.mkdir(parents=True, exist_ok=True)
    leaf = ca.issue(NAMES[0], dns=NAMES, not_before=now - 60 * DAY, not_after=now + timedelta(days=days_left))
    (directory / "privkey.pem").write_bytes(leaf.key_pem())
    (directory / "privkey.pem").chmod(0o600)
    return write_pem(directory / "fullchain.pem", leaf, ca)


def acme_params(tmp_path: Path, directory: str, **extra: Any) -> dict[str, Any]:
    live = tmp_path / "live"
    log = str(tmp_path / "hook.log")
    hook = [
        sys.executable,
        "-c",
        f"import os; open({log!r}, 'a').write(os.environ['RENEWED_DOMAINS'] + '\\n')",
    ]
    return {
        "directory": directory,
        "account_key": str(tmp_path / "account.key"),
        "contact": ["ops@maintd.example.test"],
        "fullchain_path": str(live / "fullchain.pem"),
        "cert_path": str(live / "cert.pem"),
        "chain_path": str(live / "chain.pem"),
        "key_path": str(live / "privkey.pem"),
        "deploy_hook": hook,
        **extra,
    }


def certificates(
    params: dict[str, Any], clock: FakeClock, *, dry_run: bool = False, **target: Any
) -> CheckResult:
    result: CheckResult = run(
        run_kind("certificates", params, make_target(**target), dry_run=dry_run, clock=clock, timeout=60)
    )
    return result


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_an_expiring_certificate_is_renewed_verified_and_deployed_once(
    tmp_path: Path, ca: Issued, acme_server: Pebble
) -> None:
    clock = now_clock()
    fullchain = live_certificate(tmp_path / "live", ca, clock.now(), days_left=10)
    old_chain, old_key = fullchain.read_bytes(), (tmp_path / "live" / "privkey.pem").read_bytes()
    acme = acme_params(
        tmp_path,
        acme_server.directory_url,
        ca_bundle=str(acme_server.ca_file),
        challenge="standalone",
        listen_address="127.0.0.1",
        listen_port=acme_server.http_port,
    )

    result = certificates({"acme": acme}, clock)

    assert result.status is Status.ok, result.output
    assert result.output.splitlines()[0].startswith(
        f"renewed {fullchain} through ACME {acme_server.directory_url} for {', '.join(NAMES)}: valid until "
    )
    assert sum(line.startswith("renewed ") for line in result.output.splitlines()) == 1
    assert [(c.action, c.target) for c in result.changes] == [
        ("create-account-key", str(tmp_path / "account.key")),
        ("issue", str(fullchain)),
        ("write", str(tmp_path / "live" / "privkey.pem")),
        ("write", str(tmp_path / "live" / "chain.pem")),
        ("write", str(tmp_path / "live" / "cert.pem")),
        ("write", str(fullchain)),  # last: it decides whether the next run renews
        ("deploy-hook", sys.executable),
    ]
    new_chain = parse_certificates(fullchain.read_bytes())
    pebble_root = parse_certificates(acme_server.root_pem())
    assert verify_chain(new_chain, pebble_root, datetime.now(UTC)) is None
    new_key = serialization.load_pem_private_key((tmp_path / "live" / "privkey.pem").read_bytes(), None)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert new_key.public_key().public_bytes(*spki) == new_chain[0].public_key().public_bytes(*spki)
    assert (tmp_path / "live" / "privkey.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "account.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "live" / "fullchain.pem.previous").read_bytes() == old_chain
    assert (tmp_path / "live" / "privkey.pem.previous").read_bytes() == old_key
    assert (tmp_path / "hook.log").read_text() == " ".join(NAMES) + "\n"
    assert not list((tmp_path / "live").glob(".*"))  # no staging file left behind

    before = snapshot(tmp_path / "live")
    again = certificates({"acme": acme}, clock)
    assert again.status is Status.ok and again.changes == []
    assert again.output.startswith("nothing due: the earliest expires in ")
    assert snapshot(tmp_path / "live") == before
    assert (tmp_path / "hook.log").read_text() == " ".join(NAMES) + "\n"


@pytest.fixture
def webroot_server(tmp_path: Path, acme_server: Pebble) -> Iterator[Path]:
    """A web server for the names' document root, on the port pebble fetches http-01 tokens from."""
    webroot = tmp_path / "webroot"
    webroot.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(webroot))
    server = ThreadingHTTPServer(("127.0.0.1", acme_server.http_port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield webroot
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_webroot_challenge_renews_and_a_failing_deploy_hook_is_a_warning(
    tmp_path: Path, ca: Issued, acme_server: Pebble, webroot_server: Path
) -> None:
    clock = now_clock()
    live_certificate(tmp_path / "live", ca, clock.now(), days_left=3)
    hook = [sys.executable, "-c", "import sys; print('nginx: configuration test failed'); sys.exit(3)"]
    acme = acme_params(
        tmp_path, acme_server.directory_url, ca_bundle=str(acme_server.ca_file), webroot=str(webroot_server)
    )
    acme.update(trust_roots=str(tmp_path / "pebble-root.pem"), key_type="rsa-2048", deploy_hook=hook)
    (tmp_path / "pebble-root.pem").write_bytes(acme_server.root_pem())
    result = certificates({"acme": acme}, clock)
    assert result.status is Status.warning, result.output
    assert result.output.splitlines()[0] == (
        f"renewed, but the deploy hook {hook!r} failed (exit 3): nginx: configuration test failed"
    )
    assert result.metrics["renewed"] == 1 and result.metrics["days_left"] > 300
    assert result.changes[-1].detail == {"argv": hook, "exit": 3}
    assert list((webroot_server / ".well-known" / "acme-challenge").iterdir()) == []  # tokens removed
    again = certificates({"acme": acme}, clock)  # the new certificate is in place: no second order
    assert (again.status, again.changes) == (Status.ok, [])
    leaf = parse_certificates((tmp_path / "live" / "cert.pem").read_bytes())[0]
    key = leaf.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048


def test_an_acme_server_that_is_down_leaves_the_certificate_untouched(tmp_path: Path, ca: Issued) -> None:
    clock = FakeClock(T0)
    fullchain = live_certificate(tmp_path / "live", ca, T0, days_left=10)
    before = snapshot(tmp_path)
    directory = f"https://127.0.0.1:{free_port()}/dir"
    result = certificates({"acme": acme_params(tmp_path, directory, challenge="standalone")}, clock)
    assert result.status is Status.warning
    assert result.output.splitlines()[0] == (
        f"{fullchain}: expires in 10.0 days; renewal failed: ACME server {directory}: cannot connect while "
        f"reading the directory: Connection refused; {fullchain} is unchanged (warning below 30 days)"
    )
    assert result.changes == []
    assert snapshot(tmp_path) == before  # no account key, no staging files, no hook
    clock.advance(5 * 86400)
    assert certificates({"acme": acme_params(tmp_path, directory, challenge="standalone")}, clock).status is (
        Status.critical
    )


def test_a_failed_challenge_is_reported_by_name_and_the_next_run_reuses_the_account(
    tmp_path: Path, ca: Issued, acme_server: Pebble
) -> None:
    clock = now_clock()
    live = tmp_path / "live"
    fullchain = live_certificate(live, ca, clock.now(), days_left=10)
    before = snapshot(live)
    acme = acme_params(
        tmp_path,
        acme_server.directory_url,
        ca_bundle=str(acme_server.ca_file),
        challenge="standalone",
        listen_address="127.0.0.1",
        listen_port=free_port(),  # not where pebble looks for the token
    )
    result = certificates({"acme": acme}, clock)
    assert result.status is Status.warning
    first = result.output.splitlines()[0]
    assert first.startswith(
        f"{fullchain}: expires in 10.0 days; renewal failed: ACME server {acme_server.directory_url}: "
        "challenge failed: "
    )
    assert "maintd.example.test: " in first and first.endswith(
        f"; {fullchain} is unchanged (warning below 30 days)"
    )
    assert [c.action for c in result.changes] == ["create-account-key"]  # that much did change
    assert snapshot(live) == before

    acme["listen_port"] = acme_server.http_port  # fixed: the next run uses the registered account
    retried = certificates({"acme": acme}, clock)
    assert retried.status is Status.ok, retried.output
    assert [c.action for c in retried.changes][:2] == ["issue", "write"]


def test_a_directory_it_cannot_write_leaves_the_certificate_untouched(tmp_path: Path, ca: Issued) -> None:
    clock = now_clock()
    live = tmp_path / "live"
    fullchain = live_certificate(live, ca, clock.now(), days_left=10)
    with pebble(tmp_path / "pebble") as acme_server:  # PEBBLE_VA_ALWAYS_VALID: no token is fetched
        acme = acme_params(
            tmp_path,
            acme_server.directory_url,
            ca_bundle=str(acme_server.ca_file),
            challenge="standalone",
            listen_address="127.0.0.1",
            listen_port=free_port(),
        )
        before = snapshot(live)
        subprocess.run(["chattr", "+i", str(live)], check=True)  # even root cannot create files there
        try:
            result = certificates({"acme": acme}, clock)
        finally:
            subprocess.run(["chattr", "-i", str(live)], check=True)
    assert result.status is Status.warning
    assert result.output.splitlines()[0] == (
        f"{fullchain}: expires in 10.0 days; renewal failed: cannot write "
        f"{live / '.privkey.pem.maintd-new'}: Operation not permitted; {fullchain} is unchanged "
        "(warning below 30 days)"
    )
    assert [c.action for c in result.changes] == ["create-account-key", "issue"]  # nothing written
    assert snapshot(live) == before
    assert not (tmp_path / "hook.log").exists()


def test_a_missing_ca_bundle_for_the_acme_server_is_named(tmp_path: Path, ca: Issued) -> None:
    fullchain = live_certificate(tmp_path / "live", ca, T0, days_left=10)
    bundle = tmp_path / "no-such-ca.pem"
    acme = acme_params(tmp_path, "https://127.0.0.1:1/dir", challenge="standalone", ca_bundle=str(bundle))
    result = certificates({"acme": acme}, FakeClock(T0))
    assert result.output.splitlines()[0] == (
        f"{fullchain}: expires in 10.0 days; renewal failed: cannot read ca_bundle {bundle}: "
        f"No such file or directory; {fullchain} is unchanged (warning below 30 days)"
    )


def test_a_dry_run_reports_the_renewal_and_changes_nothing(tmp_path: Path, ca: Issued) -> None:
    fullchain = live_certificate(tmp_path / "live", ca, T0, days_left=10)
    before = snapshot(tmp_path)
    acme = acme_params(tmp_path, "https://127.0.0.1:1/dir", challenge="standalone")
    result = certificates({"acme": acme}, FakeClock(T0), dry_run=True)
    assert result.status is Status.ok
    assert result.output.splitlines()[0].startswith(
        f"dry run: would renew {fullchain} (expires in 10.0 days) for {', '.join(NAMES)} through ACME "
        "https://127.0.0.1:1/dir, write "
    )
    assert [c.action for c in result.changes] == ["renew", "write", "write", "write", "write", "deploy-hook"]
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("days_left", "status", "limit"),
    [(20, Status.warning, "warning below 30"), (5, Status.critical, "critical below 7")],
)
def test_a_certificate_without_acme_is_a_warning_then_critical(
    tmp_path: Path, ca: Issued, days_left: int, status: Status, limit: str
) -> None:
    fullchain = live_certificate(tmp_path, ca, T0, days_left=days_left)
    result = certificates({}, FakeClock(T0), connection={"cert": str(fullchain)})
    assert result.status is status
    assert result.output.splitlines()[0] == (
        f"{fullchain}: expires in {days_left:.1f} days, not renewable (no acme section for it) ({limit} days)"
    )
    assert result.output.splitlines()[1] == (
        f"{fullchain}: {', '.join(NAMES)}; issued by CN=maintd test issuer; expires "
        f"{T0 + days_left * DAY:%Y-%m-%d %H:%M} UTC ({days_left:.1f} days left)"
    )
    assert result.changes == []


def test_a_missing_certificate_file_is_critical_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    result = certificates({"files": [str(missing)]}, FakeClock(T0))
    assert (result.status, result.output) == (
        Status.critical,
        f"cannot read {missing}: No such file or directory",
    )


def test_an_endpoint_is_inventoried_with_the_tls_checks_code(tmp_path: Path, ca: Issued) -> None:
    leaf = ca.issue("svc.example.test", dns=("svc.example.test",), not_after=T0 + 20 * DAY)

    async def go() -> CheckResult:
        async with tls_server(tmp_path, [leaf, ca]) as port:
            return await run_kind("certificates", {"host": "127.0.0.1", "port": port}, clock=FakeClock(T0))

    result = run(go())
    assert result.status is Status.warning
    assert "expires in 20.0 days, not renewable" in result.output.splitlines()[0]


def test_an_endpoint_still_serving_an_old_certificate_asks_whether_the_renewal_was_deployed(
    tmp_path: Path, ca: Issued
) -> None:
    live_certificate(tmp_path / "live", ca, T0, days_left=80)  # renewed on disk
    served = ca.issue(NAMES[0], dns=NAMES, not_after=T0 + 12 * DAY)  # the server was never reloaded
    acme = acme_params(tmp_path, "https://127.0.0.1:1/dir", challenge="standalone")

    async def go() -> CheckResult:
        async with tls_server(tmp_path, [served, ca]) as port:
            return await run_kind(
                "certificates", {"host": "127.0.0.1", "port": port, "acme": acme}, clock=FakeClock(T0)
            )

    result = run(go())
    assert result.status is Status.warning
    assert result.output.splitlines()[0].endswith(
        f"expires in 12.0 days as served (is the renewed {tmp_path / 'live' / 'fullchain.pem'} deployed?) "
        "(warning below 30 days)"
    )
    assert result.changes == [] and result.metrics["certificates"] == 2


def test_a_broken_new_certificate_never_replaces_the_working_one(tmp_path: Path, ca: Issued) -> None:
    fullchain = live_certificate(tmp_path, ca, T0, days_left=10)
    before = snapshot(tmp_path)
    new = ca.issue(NAMES[0], dns=NAMES)
    other_key = ca.issue("x").key_pem()  # not the new certificate's key
    dest = Destination(None, None, fullchain, tmp_path / "privkey.pem")

    def recheck(chain: bytes, key: bytes) -> None:
        raise InstallError("the new certificate does not match the new private key")

    with pytest.raises(InstallError, match="does not match the new private key \\(as written to disk\\)"):
        install(dest, [new.cert, ca.cert], other_key, recheck)
    assert snapshot(tmp_path) == before


PLAN = """
    targets:
      - {name: shop-cert, kind: certificate, connection: {cert: %s}}
    tasks:
      - name: certificates
        kind: certificates
        targets: [shop-cert]
        schedule: {every: 1m}
        alert: {after: 1, on: [critical], priority: P0}
"""


def one_round(engine: Engine) -> None:
    async def go() -> None:
        orders, _ = engine.tick(engine.clock.now())
        await engine.runner.run_all(orders)
        await engine.runner.stop(0)

    run(go())


def test_a_certificate_under_seven_days_opens_a_p0_incident(store, write_plan, make_engine, tmp_path, ca):  # type: ignore[no-untyped-def]
    fullchain = live_certificate(tmp_path / "live", ca, T0, days_left=20)
    engine = make_engine(store, write_plan(PLAN % fullchain))
    assert engine.reload().ok
    one_round(engine)  # 20 days: a warning run, no alert
    with store.read() as s:
        assert s.scalars(select(AlertRow)).all() == []
    live_certificate(tmp_path / "live", ca, T0, days_left=5)
    engine.clock.advance(60)
    one_round(engine)
    with store.read() as s:
        (alert,) = s.scalars(select(AlertRow)).all()
        (incident,) = s.scalars(select(IncidentRow)).all()
    assert (alert.severity, alert.labels["kind"]) == ("critical", "certificates")
    assert (incident.priority, incident.state, incident.postmortem_required) == ("P0", "triggered", True)
    assert incident.title.startswith(f"certificates on shop-cert: {fullchain}: expires in 5.0 days")


AUDIT_PLAN = """
    targets:
      - {name: shop-cert, kind: certificate, connection: {directory: %s}}
    tasks:
      - name: certificates
        kind: certificates
        targets: [shop-cert]
        schedule: {cadence: daily, window: "02:00-03:00 UTC"}
        timeout: 1m
        params:
          acme:
            directory: %s
            ca_bundle: %s
            account_key: "{target.directory}/account.key"
            challenge: standalone
            listen_address: 127.0.0.1
            listen_port: %d
            fullchain_path: "{target.directory}/fullchain.pem"
            key_path: "{target.directory}/privkey.pem"
"""


def test_a_renewal_through_the_engine_is_audited_as_one_event_listing_each_change(  # type: ignore[no-untyped-def]
    store, write_plan, make_engine, clock, tmp_path, ca
) -> None:
    live = tmp_path / "live"
    fullchain = live_certificate(live, ca, T0, days_left=10)
    with pebble(tmp_path / "pebble") as acme_server:  # PEBBLE_VA_ALWAYS_VALID
        plan = AUDIT_PLAN % (live, acme_server.directory_url, acme_server.ca_file, free_port())
        engine = make_engine(store, write_plan(plan))
        assert engine.reload().ok
        for dry_run in (True, False):
            run_by_hand(engine, "certificates", "shop-cert", dry_run=dry_run)
    audit = action_events(store)
    assert [e.kind for e in audit] == ["action.planned", "action.applied"]
    assert [(c["action"], Path(c["target"]).name) for c in audit[0].payload["changes"]] == [
        ("renew", "fullchain.pem"),
        ("write", "privkey.pem"),
        ("write", "fullchain.pem"),
    ]
    applied = audit[1].payload["changes"]
    assert [(c["action"], Path(c["target"]).name) for c in applied] == [
        ("create-account-key", "account.key"),
        ("issue", "fullchain.pem"),
        ("write", "privkey.pem"),
        ("write", "fullchain.pem"),
    ]
    assert applied[1]["detail"]["domains"] == list(NAMES)
    assert applied[3]["detail"] == {"previous": f"{fullchain}.previous"}
