"""The protocol era the server speaks: ``server/discover`` (modern) first, else the ``initialize`` handshake.

The era negotiation is driven here rather than by ``Client(mode="auto")`` so
that each step has its own latency and every fallback its reason; the policy
is the SDK's (``mcp.client._probe.negotiate_auto``): probe ``server/discover``
at the newest modern version; a -32022 naming a mutual modern version re-probes
once at it; a -32022 naming only modern versions maintd does not speak is an
incompatibility; any other error, an answer that is not a DiscoverResult, or
one listing no modern version falls back to the ``initialize`` handshake.
"""

from __future__ import annotations

import functools

import mcp_types as types
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    KNOWN_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)
from pydantic import ValidationError

from maintd import __version__
from maintd.checks.mcp.conversation import Conversation, Stop, first_error


async def negotiate(conv: Conversation, session: ClientSession) -> None:
    pinned = conv.plan.protocol
    if pinned in HANDSHAKE_PROTOCOL_VERSIONS:
        await _initialize(conv, session, pinned, exact=True)
        return
    if pinned == "legacy":
        await _initialize(conv, session, LATEST_HANDSHAKE_VERSION, exact=False)
        return
    modern_pin = pinned in MODERN_PROTOCOL_VERSIONS
    version = pinned if modern_pin else MODERN_PROTOCOL_VERSIONS[-1]
    for attempt in range(2):
        try:
            raw = await conv.timed_call("server/discover", functools.partial(session.send_discover, version))
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED:
                raise
            supported = _supported(exc) if exc.code == types.UNSUPPORTED_PROTOCOL_VERSION else None
            if supported is not None:
                conv.report.notes.append(
                    f"server/discover at {version}: unsupported protocol version; "
                    f"the server supports {', '.join(supported) or 'nothing'}"
                )
                if modern_pin:
                    conv.fail(f"the server does not support the pinned protocol {version}")
                    raise Stop from None
                mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in supported]
                if mutual and attempt == 0:
                    version = mutual[-1]
                    continue
                if not any(v in HANDSHAKE_PROTOCOL_VERSIONS for v in supported):
                    conv.fail(
                        f"no protocol version in common: the server supports {', '.join(supported)}; "
                        f"maintd speaks {', '.join(KNOWN_PROTOCOL_VERSIONS)}"
                    )
                    raise Stop from None
            elif modern_pin:
                conv.fail(f"server/discover: {conv.error(exc)}")
                raise Stop from None
            else:
                conv.report.notes.append(f"server/discover: {conv.error(exc)}: handshake era")
            await _initialize(conv, session, LATEST_HANDSHAKE_VERSION, exact=False)
            return
        try:
            result = types.DiscoverResult.model_validate(raw)
        except ValidationError as exc:
            if modern_pin:
                raise
            conv.report.notes.append(
                f"server/discover answered with no DiscoverResult ({first_error(exc)}): handshake era"
            )
            await _initialize(conv, session, LATEST_HANDSHAKE_VERSION, exact=False)
            return
        mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in result.supported_versions]
        if not mutual or (modern_pin and version not in result.supported_versions):
            listed = ", ".join(result.supported_versions) or "nothing"
            if modern_pin:
                conv.fail(f"server/discover lists {listed}, not the pinned protocol {version}")
                raise Stop
            conv.report.notes.append(f"server/discover lists only {listed}: handshake era")
            await _initialize(conv, session, LATEST_HANDSHAKE_VERSION, exact=False)
            return
        session.adopt(result)
        conv.report.era = "modern"
        conv.report.version = session.protocol_version
        conv.report.server = server_name(session.server_info)
        return


async def _initialize(conv: Conversation, session: ClientSession, version: str, *, exact: bool) -> None:
    request = types.InitializeRequest(
        params=types.InitializeRequestParams(
            protocol_version=version,
            capabilities=types.ClientCapabilities(),
            client_info=types.Implementation(name="maintd", version=__version__),
        )
    )
    result = await conv.timed_call(
        "initialize", lambda: session.send_request(request, types.InitializeResult)
    )
    answered = result.protocol_version
    if answered not in HANDSHAKE_PROTOCOL_VERSIONS or (exact and answered != version):
        wanted = f"the pinned {version}" if exact else "a handshake-era version maintd speaks"
        conv.fail(f"initialize: the server answered protocol {answered}, not {wanted}")
        raise Stop
    session.adopt(result)
    conv.report.era = "handshake"
    conv.report.version = answered
    conv.report.server = server_name(result.server_info)
    await session.send_notification(types.InitializedNotification())


def server_name(info: types.Implementation | None) -> str | None:
    if info is None:
        return None
    return f"{info.name} {info.version}".strip()


def _supported(exc: MCPError) -> list[str] | None:
    try:
        return types.UnsupportedProtocolVersionErrorData.model_validate(exc.error.data).supported
    except ValidationError:
        return None
