"""The fake clock tests drive time with: sleepers wake when it is moved past their time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from maintd.clock import FakeClock
from tests.conftest import T0, run


def test_a_sleeper_counts_as_asleep_until_later_only_while_its_time_is_ahead() -> None:
    clock = FakeClock(T0)

    async def scenario() -> None:
        woke = asyncio.Event()

        async def sleeper() -> None:
            await clock.sleep_until(T0 + timedelta(seconds=10))
            woke.set()
            await clock.sleep_until(T0 + timedelta(seconds=30))

        async def asleep_for_later() -> None:
            while clock.asleep_until_later() == 0:
                await asyncio.sleep(0)

        task = asyncio.create_task(sleeper())
        await asyncio.wait_for(asleep_for_later(), timeout=5)
        assert (clock.sleeping, clock.asleep_until_later()) == (1, 1)
        clock.set(T0 + timedelta(seconds=10))
        assert clock.asleep_until_later() == 0  # due now: counted again only once asleep for later
        await asyncio.wait_for(woke.wait(), timeout=5)
        await asyncio.wait_for(asleep_for_later(), timeout=5)
        assert (clock.sleeping, clock.asleep_until_later()) == (1, 1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert (clock.sleeping, clock.asleep_until_later()) == (0, 0)

    run(scenario())
