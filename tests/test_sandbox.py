"""The sandbox end to end: real worker processes, real limits.

The good programs and the bad-input matrix live in r2local/sandbox/cases.py
(the same list `python -m benchmarks.sandbox_table` prints).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from r2local.sandbox import Limits, Sandbox, SandboxClosed, SandboxUnavailable, ProgramStatus
from tests.support.sandbox_cases import BAD, GOOD
from r2local.sandbox.runner import KILL_GRACE_S

LIMITS = Limits(timeout_s=1.0)
# Beyond timeout + kill grace: scheduling on a loaded 2-core box.
SLACK_S = 1.0
BOUND_S = LIMITS.timeout_s + KILL_GRACE_S + SLACK_S


@pytest.fixture(scope="module")
def box():
    with Sandbox(LIMITS) as sandbox:
        yield sandbox


def _timed(box: Sandbox, program: str):
    started = time.monotonic()
    result = box.run(program)
    return result, time.monotonic() - started


@pytest.mark.parametrize("case", GOOD, ids=[c.name for c in GOOD])
def test_typical_model_programs_get_the_right_answer(box, case):
    result = box.run(case.program)
    assert result.status is ProgramStatus.OK, result.error
    assert result.value == case.value


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_bad_input_is_stopped_in_bounded_time_and_the_next_run_works(box, case):
    result, elapsed = _timed(box, case.program)
    assert result.status is case.expect, (result.status, result.error)
    assert result.error and result.value is None
    assert elapsed < BOUND_S
    after = box.run("print(6 * 7)")
    assert (after.status, after.value) == (ProgramStatus.OK, "42")


def test_answer_order_answer_then_result_then_print_then_last_expression(box):
    assert box.run("result = 1\nanswer = 2\nprint(3)\n4").value == "2"
    assert box.run("result = 1\nprint(3)\n4").value == "1"
    assert box.run("print(3)\nprint()\n4").value == "3"
    assert box.run("x = 2\nx + 2").value == "4"
    assert box.run("print('total', 0.1 + 0.2)").value == "total 0.3"
    assert box.run("print(f'{0.1 + 0.2}')").value == "0.3"  # a float's repr, as text
    assert box.run("def answer():\n    return 5\nprint(answer())").value == "5"  # a function is no answer


def test_output_is_captured_and_capped(box):
    result = box.run("for i in range(3):\n    print(i)")
    assert result.output == "0\n1\n2\n" and result.value == "2"
    flood = box.run("print('y' * 20000)")
    assert flood.status is ProgramStatus.OUTPUT and len(flood.output) == LIMITS.max_output_chars


def test_recursion_within_the_depth_limit_works(box):
    assert box.run("def f(n):\n    return 0 if n == 0 else 1 + f(n - 1)\nprint(f(400))").value == "400"


def test_nothing_leaks_from_one_run_to_the_next(box):
    assert box.run("secret = 5").status is ProgramStatus.NO_ANSWER
    assert box.run("print(secret)").status is ProgramStatus.ERROR
    assert box.run("import math\nmath.pi = 3").status is ProgramStatus.REFUSED
    assert box.run("print(math.pi)").value == "3.141592654"
    assert box.run("from decimal import getcontext\ngetcontext().prec = 3\nanswer = 1").value == "1"
    third = box.run("from decimal import Decimal\nprint(Decimal(1) / Decimal(3))").value
    assert third == "0." + "3" * 28


def test_a_program_cannot_write_a_file(box, tmp_path):
    target = tmp_path / "pwned.txt"
    attempts = [
        f"open({str(target)!r}, 'w').write('x')",
        f"print('x', file=open({str(target)!r}, 'w'))",
        f"__import__('os').system('touch {target}')",
        f"import pathlib\npathlib.Path({str(target)!r}).write_text('x')",
        f"import io\nio.open({str(target)!r}, 'w')",
        f"from os import system\nsystem('touch {target}')",
    ]
    for program in attempts:
        result = box.run(program)
        assert result.status is not ProgramStatus.OK, program
    assert not target.exists()


def test_a_program_cannot_open_a_socket(box):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.3)
        port = listener.getsockname()[1]
        for program in (
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}))",
            f"__import__('socket').create_connection(('127.0.0.1', {port}))",
            f"from socket import create_connection\ncreate_connection(('127.0.0.1', {port}))",
        ):
            assert box.run(program).status is ProgramStatus.REFUSED
        with pytest.raises(TimeoutError):
            listener.accept()


@pytest.mark.skipif(sys.platform == "win32", reason="no resource module")
def test_os_limits_hold_even_behind_the_evaluator(tmp_path):
    """Second wall: with the worker's limits applied, plain Python (no
    evaluator at all) can neither write a file, open a socket, fork nor
    allocate past the memory cap."""
    target = tmp_path / "written.txt"
    probe = f"""
import json, os, socket, sys
from r2local.sandbox.limits import Limits
from r2local.sandbox.worker import apply_os_limits
applied = apply_os_limits(Limits(max_memory_mb=256))
out = {{"applied": applied}}
def attempt(name, fn):
    try:
        fn(); out[name] = "allowed"
    except BaseException as exc:
        out[name] = type(exc).__name__
attempt("open", lambda: open({str(target)!r}, "w"))
attempt("socket", lambda: socket.socket())
attempt("memory", lambda: bytearray(512 * 1024 * 1024))
if os.getuid() != 0:  # root ignores RLIMIT_NPROC
    attempt("fork", lambda: os.fork() or None)
sys.__stdout__.write(json.dumps(out))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60, check=False)
    out = json.loads(done.stdout)
    assert {"RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC"} <= set(out["applied"])
    assert out["open"] == "OSError" and out["socket"] == "OSError" and out["memory"] == "MemoryError"
    assert out.get("fork", "BlockingIOError") != "allowed"
    assert not target.exists()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_the_worker_gets_no_secrets_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-R2SANDBOXCANARY")
    monkeypatch.setenv("PYTHONPATH", "/nonexistent")
    with Sandbox(LIMITS) as sandbox:
        sandbox.warm()
        [pid] = sandbox.pids
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert sandbox.run("print(1)").value == "1"
    assert b"R2SANDBOXCANARY" not in environ and b"PYTHONPATH" not in environ


def test_a_worker_killed_mid_run_gives_a_status_and_the_next_run_works():
    with Sandbox(Limits(timeout_s=10.0)) as sandbox:
        sandbox.warm()
        [pid] = sandbox.pids
        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
        result, elapsed = _timed(sandbox, "while True:\n    pass")
        assert result.status is ProgramStatus.MEMORY and "killed" in result.error
        assert elapsed < 5
        assert sandbox.run("print(1)").value == "1"
        assert sandbox.pids != [pid]


def test_concurrent_runs_on_a_small_pool_are_all_answered():
    results: dict[tuple[int, int], str | None] = {}

    def ask(sandbox: Sandbox, i: int) -> None:
        for j in range(5):
            results[i, j] = sandbox.run(f"print({i} * {j})").value

    with Sandbox(LIMITS, workers=2) as sandbox:
        threads = [threading.Thread(target=ask, args=(sandbox, i)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(sandbox.pids) <= 2
    assert results == {(i, j): str(i * j) for i in range(4) for j in range(5)}


def test_one_worker_serialises_and_a_slow_run_does_not_starve_the_others():
    with Sandbox(LIMITS) as sandbox:
        slow = threading.Thread(target=sandbox.run, args=("while True:\n    pass",))
        slow.start()
        time.sleep(0.1)
        result, elapsed = _timed(sandbox, "print(2 + 2)")
        slow.join()
        assert result.value == "4" and elapsed < 2 * BOUND_S


def test_warm_runs_cost_milliseconds(box):
    box.run("answer = 0")
    times = sorted(_timed(box, "answer = 1")[1] for _ in range(11))
    assert times[5] < 0.05


def test_run_reply_extracts_and_runs(box):
    assert box.run_reply("Here you go:\n```python\nprint(2 + 2)\n```\nSo 4.").value == "4"
    assert box.run_reply("The answer is 4.") is None


def test_close_kills_the_workers_and_refuses_further_runs():
    sandbox = Sandbox(LIMITS)
    sandbox.warm()
    [pid] = sandbox.pids
    sandbox.close()
    with pytest.raises(SandboxClosed) as err:
        sandbox.run("print(1)")
    assert err.value.fix
    time.sleep(0.1)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_worker_that_cannot_start_is_a_typed_error_with_a_fix(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with Sandbox(LIMITS, start_timeout_s=10) as sandbox, pytest.raises(SandboxUnavailable) as err:
        sandbox.run("print(1)")
    assert "asteval" in err.value.fix
