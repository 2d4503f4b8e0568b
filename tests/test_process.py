"""Real ``maintd serve`` processes: SIGKILL and restart, SIGHUP, SIGTERM, start-up, readiness.

Time is a file (``MAINTD_CLOCK=file:...``) the test moves; tasks run
tests/process_support/block.py, which announces itself and blocks while a hold
file exists, so the test knows when a run is in progress and decides when it
ends. Every wait polls the database, the API or the file system against a
deadline; every process is killed in teardown.
"""

from __future__ import annotations

import json
import os
import re
import signal
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from maintd.store.models import HeartbeatRow
from tests.harness import T0, Harness, cli, free_port, http_get
from tests.processes import alive

pytestmark = pytest.mark.slow


def one_task_plan(h: Harness, name: str = "a", every: str = "1m", extra: str = "") -> str:
    return f"""
        {extra}
        targets:
          - {{name: local, kind: host}}
        tasks:
          - name: {name}
            kind: command
            targets: [local]
            schedule: {{every: {every}}}
            params: {{argv: {h.command(name)}}}
        """


# -- 1. SIGKILL and restart ---------------------------------------------------


def test_sigkill_and_restart_lose_no_due_run_and_duplicate_none(world: Harness) -> None:
    h = world
    h.write_plan(one_task_plan(h))
    h.hold("a")
    first = h.serve()

    # Run 1 (due at T0: an interval schedule starts at once): in progress, then released.
    h.wait_for("run 1's command to start", lambda: len(h.started("a")) == 1, first)
    h.release("a")
    h.wait_for("run 1 to finish", lambda: h.finished("a", 1), first)

    # Run 2, at the next due time: SIGKILL maintd while its command runs.
    h.hold("a")
    h.set_clock(T0 + timedelta(minutes=1))
    h.wait_for("run 2's command to start", lambda: len(h.started("a")) == 2, first)
    first.signal(signal.SIGKILL)
    assert first.wait_exit(10) == -signal.SIGKILL
    orphan = h.started("a")[1]
    # The kernel does not pass a SIGKILL on to children, and each command has its own session:
    # run 2's command outlives maintd. It is still blocked when maintd comes back.
    assert alive(orphan)
    run2 = h.runs()[1]
    assert (run2.trigger, run2.state) == ("schedule", "running")  # nobody can know yet
    assert run2.scheduled_for == T0 + timedelta(minutes=1)

    # While maintd is down two more due times pass (T0+2m, T0+3m).
    h.set_clock(T0 + timedelta(minutes=3, seconds=10))
    second = h.serve()
    # The restarted maintd kills what the dead one left running before it runs run 2 again,
    # so the recovery run never overlaps the orphan.
    h.wait_for("the orphaned command of run 2 to be killed", lambda: not alive(orphan), second)
    h.release("a")
    h.wait_for("recovery and misfire runs to finish", lambda: h.settled("a"), second)

    assert h.counts() == {
        ("schedule", "finished", None): 1,  # run 1
        ("schedule", "interrupted", "crash"): 1,  # run 2, found running by the restarted engine
        ("recovery", "finished", None): 1,  # run 2 again, once
        ("misfire", "finished", None): 1,  # T0+2m and T0+3m, run_once
    }
    by_trigger = {r.trigger: r for r in h.runs() if r.trigger != "schedule"}
    assert by_trigger["recovery"].attempt == 1
    assert by_trigger["misfire"].scheduled_for == T0 + timedelta(minutes=2)
    assert all(r.status == "ok" for r in by_trigger.values())
    assert h.runs()[1].id == run2.id and h.runs()[1].status == "unknown"
    # Every claimed run executed its command exactly once: 4 runs, 4 command starts.
    assert len(h.started("a")) == 4
    assert [e.payload["run_id"] for e in h.events("run.interrupted")] == [run2.id]
    assert len(h.events("run.misfire")) == 1
    assert "1 run(s) were interrupted by an earlier stop" in second.stderr()
    row = h.schedule("a")
    assert row is not None and row.next_regular == h.now + timedelta(minutes=1)


# -- 2. SIGHUP with an invalid plan ---------------------------------------------


def test_sighup_with_an_invalid_plan_keeps_the_last_good_plan(sqlite_world: Harness) -> None:
    h = sqlite_world
    h.write_plan(one_task_plan(h, "tick"))
    server = h.serve()
    h.wait_for("run 1", lambda: h.finished("tick", 1), server)
    (good,) = h.events("plan.loaded")

    h.plan_file.write_text(
        textwrap.dedent(
            """\
            targets:
              - {name: local, kind: host}
            tasks:
              - name: tick
               kind: command
            """
        )
    )
    server.signal(signal.SIGHUP)
    (rejected,) = h.wait_for("a plan.rejected event", lambda: h.events("plan.rejected"), server)
    assert rejected.actor == "signal:SIGHUP"
    assert rejected.payload["kept"] == good.payload["digest"]
    problem = rejected.payload["problems"][0]
    assert re.match(rf"{re.escape(str(h.plan_file))}:\d+: error: not valid YAML", problem), problem

    # The last good plan keeps running on schedule.
    h.set_clock(T0 + timedelta(minutes=1))
    runs = h.wait_for("run 2 under the kept plan", lambda: h.finished("tick", 2), server)
    assert [r.trigger for r in runs] == ["schedule", "schedule"]
    assert runs[1].scheduled_for == T0 + timedelta(minutes=1)

    token = cli("token", "create", "--name", "ops", "--role", "admin", env=h.env)
    assert token.returncode == 0, token.stderr
    reload_args = ("plan", "reload", "--url", server.url, "--token", token.stdout.strip())

    # Through the API too, an invalid plan is refused with its problems.
    refused = cli(*reload_args, env=h.env)
    assert refused.returncode == 1
    assert f"{h.plan_file}:" in refused.stderr and "plan rejected" in refused.stderr

    # Fixed (and changed: a second task), reloaded through the API.
    h.write_plan(
        one_task_plan(h, "tick")
        + f"""
          - name: tock
            kind: command
            targets: [local]
            schedule: {{every: 1m}}
            params: {{argv: {h.command("tock")}}}
        """
    )
    reloaded = cli(*reload_args, env=h.env)
    assert reloaded.returncode == 0, reloaded.stderr
    assert "plan reloaded (changed" in reloaded.stdout
    loaded = h.wait_for("a second plan.loaded event", lambda: h.events("plan.loaded")[1:], server)
    assert loaded[0].actor == "token:ops"
    assert loaded[0].payload["digest"] != good.payload["digest"]
    assert loaded[0].payload["added"] == 1
    h.wait_for("the new task to run", lambda: h.finished("tock", 1), server)
    assert len(h.runs()) == 3  # tick twice (unchanged schedule, not re-run), tock once
    assert len(h.events("plan.rejected")) == 2  # SIGHUP, then the refused API reload


# -- 3. SIGTERM -------------------------------------------------------------------


def test_sigterm_waits_for_the_grace_period_then_interrupts(world: Harness) -> None:
    h = world
    h.write_plan(
        f"""
        runner: {{shutdown_grace: 4s}}
        targets:
          - {{name: local, kind: host}}
        tasks:
          - name: quick
            kind: command
            targets: [local]
            schedule: {{every: 1h}}
            params: {{argv: {h.command("quick")}}}
          - name: stuck
            kind: command
            targets: [local]
            schedule: {{every: 1h}}
            params: {{argv: {h.command("stuck")}}}
        """
    )
    h.hold("quick")
    h.hold("stuck")
    server = h.serve()
    h.wait_for(
        "both commands to start", lambda: len(h.started("quick")) == len(h.started("stuck")) == 1, server
    )
    stuck_pid = h.started("stuck")[0]

    began = time.monotonic()
    server.signal(signal.SIGTERM)
    h.release("quick")  # ends within the grace period (0.1-0.3 s here); "stuck" never does
    assert server.wait_exit(30) == 0
    took = time.monotonic() - began
    assert took < 15, f"maintd took {took:.1f}s to stop with a 4s grace period"

    quick, stuck = (next(r for r in h.runs() if r.task == t) for t in ("quick", "stuck"))
    assert (quick.state, quick.status, quick.stop_reason) == ("finished", "ok", None)
    assert (stuck.state, stuck.status, stuck.stop_reason) == ("interrupted", "unknown", "shutdown")
    assert not alive(stuck_pid), "the interrupted run's command outlived maintd"
    assert [e.payload["run_id"] for e in h.events("run.shutdown")] == [stuck.id]
    assert len(h.events("engine.stopped")) == 1
    row = h.schedule("stuck")
    assert row is not None and row.running_run_id is None and row.retry_trigger == "recovery"


# -- 4. start-up with an invalid plan -------------------------------------------


def test_serve_with_an_invalid_plan_and_an_empty_database_fails(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("tasks:\n  - name: x\n    kind: command\n    schedule: {every: 1m\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAINTD_")}
    env.update(MAINTD_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}", MAINTD_PORT=str(free_port()))
    done = cli("serve", "--plan", str(plan), env=env)
    assert done.returncode == 2, done.stderr
    assert "the plan is invalid and no earlier plan is stored" in done.stderr
    assert re.search(rf"{re.escape(str(plan))}:\d+: error: not valid YAML", done.stderr), done.stderr


def test_serve_with_an_invalid_plan_starts_on_the_stored_one(world: Harness) -> None:
    h = world
    h.write_plan(one_task_plan(h))
    earlier = h.serve()
    h.wait_for("the first process to run the task", lambda: h.finished("a", 1), earlier)
    earlier.signal(signal.SIGTERM)
    assert earlier.wait_exit(15) == 0

    h.write_plan("tasks: [oops\n")
    h.set_clock(T0 + timedelta(seconds=30))  # within the misfire grace of the T0+1m due time
    server = h.serve()
    h.wait_ready(server)
    # On PostgreSQL the lease holder takes over a moment after /readyz answers (the earlier
    # process's heartbeat is still fresh): wait for it to say so.
    said = "plan on disk rejected, running the last good plan"
    h.wait_for("the scheduler to take the stored plan", lambda: said in server.stderr(), server)
    assert "starting with the last good plan" in server.stderr()
    assert len(h.events("plan.rejected")) == 1
    h.set_clock(T0 + timedelta(minutes=1))
    runs = h.wait_for("the stored plan's task to run", lambda: h.finished("a", 2), server)
    assert runs[1].trigger == "schedule"


# -- 4b. a second maintd serve by mistake --------------------------------------


def test_a_second_serve_beside_a_running_one_stops_before_changing_anything(world: Harness) -> None:
    """Its start-up would mark the first one's run interrupted and record itself started."""
    h = world
    h.write_plan(one_task_plan(h))
    h.hold("a")
    first = h.serve()
    h.wait_for("run 1's command to start", lambda: len(h.started("a")) == 1, first)

    same_port = cli("serve", "--plan", str(h.plan_dir), env={**h.env, "MAINTD_PORT": str(first.port)})
    assert same_port.returncode == 2, same_port.stderr
    assert f"error: cannot listen on 127.0.0.1:{first.port}: Address already in use" in same_port.stderr
    if h.store.dialect == "sqlite":  # on PostgreSQL another port makes a standby (the lease's tests)
        other_port = cli("serve", "--plan", str(h.plan_dir), env={**h.env, "MAINTD_PORT": str(free_port())})
        assert other_port.returncode == 2, other_port.stderr
        assert f"another maintd serve (pid {first.proc.pid}) is running on " in other_port.stderr

    assert len(h.events("engine.started")) == 1
    assert [r.state for r in h.runs()] == ["running"]
    h.release("a")
    [run] = h.wait_for("run 1 to finish", lambda: h.finished("a", 1), first)
    assert (run.state, run.status) == ("finished", "ok")
    assert not h.events("run.interrupted")


# -- 5. readiness and the CLI's JSON ----------------------------------------------


def test_readyz_and_json_listings(sqlite_world: Harness) -> None:
    h = sqlite_world
    h.write_plan(one_task_plan(h))
    server = h.serve()
    body = h.wait_ready(server)
    assert body == {"ready": True, "checks": {"database": "ok", "plan": "ok", "scheduler": "ok"}}
    with h.store.read() as s:
        beat = s.get(HeartbeatRow, "scheduler")
    assert beat is not None and beat.beat_at == T0
    h.wait_for("run 1", lambda: h.finished("a", 1), server)
    h.set_clock(T0 + timedelta(minutes=1))
    in_db = h.wait_for("run 2", lambda: h.finished("a", 2), server)

    runs = cli("runs", "--json", env=h.env)
    assert runs.returncode == 0, runs.stderr
    lines = [json.loads(line) for line in runs.stdout.splitlines()]
    assert [r["id"] for r in lines] == [r.id for r in reversed(in_db)]  # newest first
    assert all(r["state"] == "finished" and r["status"] == "ok" for r in lines)

    tasks = cli("tasks", "--json", env=h.env)
    assert tasks.returncode == 0, tasks.stderr
    (task,) = [json.loads(line) for line in tasks.stdout.splitlines()]
    assert task["name"] == "a" and task["schedule"]["every"]
    (state,) = task["targets"]
    assert state["target"] == "local" and state["last_status"] == "ok"
    assert state["last_run_id"] == in_db[1].id
    assert datetime.fromisoformat(state["next_due"]) == T0 + timedelta(minutes=2)
    code, _ = http_get(server.url + "/readyz")
    assert code == 200
