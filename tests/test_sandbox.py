"""The sandbox that runs model-written code: results, limits, kills, and what happens without bubblewrap.

Escape attempts are in tests/test_sandbox_escapes.py.
"""

import logging
import os
import shutil
import time
import uuid

import pytest

from t2demo import sandbox
from t2demo.sandbox import run_many, run_python

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                 reason="bubblewrap is not installed (apt-get install bubblewrap); no code can run")


@pytest.fixture(params=["with-hook", "bwrap-only"])
def layers(request, monkeypatch):
    """Run a test with the audit hook and without it, where bubblewrap alone must hold."""
    monkeypatch.setattr(sandbox, "AUDIT_HOOK", request.param == "with-hook")
    return request.param


def _survivors(marker: str) -> list[int]:
    """Host pids of processes whose working directory is named `marker`."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in os.readlink(f"/proc/{pid}/cwd"):
                pids.append(int(pid))
        except OSError:
            pass
    return pids


@needs_bwrap
def test_normal_code_runs_and_prints():
    r = run_python("import math\nprint('hello', math.factorial(5))\nopen('note.txt', 'w').write('inside is fine')")
    assert r.ok and r.reason == "ok" and r.returncode == 0 and not r.timed_out
    assert r.stdout == "hello 120\n" and r.stderr == ""


@needs_bwrap
def test_the_standard_library_works():
    code = ("import json, re, collections, itertools, functools, decimal, fractions, datetime, hashlib, sqlite3, zlib\n"
            "import threading, heapq, bisect, statistics, random, string, textwrap, unicodedata, ctypes\n"
            "t = threading.Thread(target=print, args=('thread',))\nt.start()\nt.join()\n"
            "print(json.dumps(collections.Counter('aab')), hashlib.sha256(b'').hexdigest()[:8], sqlite3.connect(':memory:').execute('select 2').fetchone())")
    r = run_python(code)
    assert r.ok, r.stderr
    assert r.stdout == 'thread\n{"a": 2, "b": 1} e3b0c442 (2,)\n'


@needs_bwrap
def test_errors_are_reported():
    r = run_python("raise ValueError('nope')")
    assert not r.ok and r.reason == "error" and "ValueError: nope" in r.stderr
    assert 'File "main.py", line 1' in r.stderr
    assert run_python("def f(:\n    pass").reason == "error"


@needs_bwrap
def test_infinite_loop_is_killed_in_time():
    start = time.monotonic()
    r = run_python("while True:\n    pass", timeout_s=1.0)
    assert r.timed_out and r.reason == "timeout" and not r.ok and r.returncode is None
    assert time.monotonic() - start < 2.5


@needs_bwrap
@pytest.mark.parametrize("parent", ["while True:\n    pass", "print('parent exits')"])
def test_child_processes_die_with_the_sandbox(parent, layers):
    marker = f"mark-{uuid.uuid4().hex}"
    code = (f"import os, time\nos.mkdir({marker!r})\nos.chdir({marker!r})\nif os.fork() == 0:\n"
            f"    os.setsid()\n    time.sleep(1000)\n{parent}\n")
    start = time.monotonic()
    r = run_python(code, timeout_s=1.0)
    assert time.monotonic() - start < 2.5 and r.stderr == ""
    time.sleep(0.2)
    assert _survivors(marker) == []


@needs_bwrap
def test_fork_bomb_is_bounded():
    r = run_python("import os\nn = 0\nwhile True:\n    os.fork()\n    n += 1", timeout_s=2.0)
    assert "fork budget" in r.stderr and not r.timed_out


@needs_bwrap
def test_memory_hog_is_stopped(layers):
    r = run_python("x = bytearray(2 * 1024 ** 3)", memory_mb=256)
    assert r.reason == "memory" and "MemoryError" in r.stderr
    r = run_python("x = []\nwhile True:\n    x.append(' ' * 10 ** 6)", memory_mb=256, timeout_s=10)
    assert r.reason == "memory" and not r.timed_out


@needs_bwrap
def test_output_is_capped():
    r = run_python("print('x' * 10 ** 8)")
    assert not r.ok and len(r.stdout) <= sandbox.OUTPUT_LIMIT


@needs_bwrap
def test_the_audit_hook_explains_what_it_refuses(tmp_path):
    """Defence in depth: the hook names the refused action; bubblewrap would stop these anyway."""
    for attack in ("import subprocess\nsubprocess.run(['true'])", "import os\nos.system('true')",
                   "import os\nos.execv('/bin/true', ['true'])", "import os\nos.kill(1, 0)", "import ctypes\nctypes.CDLL(None)",
                   "import socket\nsocket.socket()", f"open({str(tmp_path / 'x')!r}, 'w')",
                   "import os\nos.symlink('/tmp', 'link')\nopen('link/x', 'w')"):
        r = run_python(attack)
        assert r.reason == "blocked" and "PermissionError: sandbox:" in r.stderr, attack


@needs_bwrap
def test_run_many_keeps_order():
    results = run_many([f"print({i} * {i})" for i in range(12)] + ["raise SystemExit(3)"])
    assert [r.stdout.strip() for r in results[:12]] == [str(i * i) for i in range(12)]
    assert results[-1].returncode == 3 and not results[-1].ok


@needs_bwrap
def test_snippets_in_one_batch_are_isolated():
    codes = ["while True:\n    pass", "print('after a hang')", "import sys\nsys.exit(3)", "open('f', 'w').write('x')",
             "import os\nprint(os.path.exists('f'), os.listdir('/tmp'))", "import faulthandler\nfaulthandler._sigsegv()",
             "import builtins\nbuiltins.print = None", "print('print still works')"]
    r = run_many(codes, timeout_s=1.0, workers=1)
    assert r[0].reason == "timeout" and r[1].stdout == "after a hang\n"
    assert r[2].returncode == 3 and r[2].reason == "error" and r[3].ok
    assert r[4].stdout == "False ['4']\n"  # every snippet has its own folder; /tmp is emptied between them
    assert r[5].reason == "killed" and r[5].returncode == -11
    assert r[7].stdout == "print still works\n"


@needs_bwrap
def test_a_fresh_sandbox_takes_over_when_one_cannot_be_cleaned(monkeypatch):
    """A snippet that leaves /tmp uncleanable (too deep to walk) costs a restart, not the snippets after it."""
    monkeypatch.setattr(sandbox, "AUDIT_HOOK", False)  # the hook's realpath checks make deep folders slow
    deep = "import os\nfor i in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\nprint('deep')"
    r = run_many([deep, "import os\nprint(os.listdir('/tmp'))", "print('third')"], timeout_s=5.0, workers=1)
    assert r[0].stdout == "deep\n"
    assert r[1].ok and r[1].stdout == "['0']\n"  # a fresh sandbox: it numbers its snippets from 0 again
    assert r[2].stdout == "third\n"


def test_without_bubblewrap_nothing_runs(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sandbox, "BWRAP", f"/nonexistent/bwrap-{uuid.uuid4().hex}")
    target = tmp_path / "ran.txt"
    with caplog.at_level(logging.WARNING, logger="t2demo.sandbox"):
        results = run_many([f"open({str(target)!r}, 'w').write('ran')", "print('hi')"] * 3, workers=2)
        run_python("print('again')")
    assert not target.exists()
    assert all(not r.ok and r.reason == "unavailable" and r.returncode is None and r.stdout == "" for r in results)
    assert all(r.stderr.startswith("not run: sandbox unavailable: ") and "not found" in r.stderr for r in results)
    assert len([rec for rec in caplog.records if "sandbox unavailable" in rec.getMessage()]) == 1


@needs_bwrap
def test_when_bwrap_fails_to_start_nothing_runs(tmp_path, monkeypatch):
    broken = tmp_path / "bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: Creating new namespace failed: Operation not permitted' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sandbox, "BWRAP", str(broken))
    r = run_python("print('hi')")
    assert not r.ok and r.reason == "unavailable" and r.stdout == ""
    assert r.stderr.startswith("not run: sandbox unavailable: bwrap: Creating new namespace failed")


@needs_bwrap
def test_the_code_checker_scores_unrun_code_as_wrong(monkeypatch):
    from t2demo.tasks.base import Example
    from t2demo.tasks.benchmarks.execution import pass_at_1

    example = Example("Write add_two.", "assert add_two(3) == 5", "", "mbpp")
    answer = "```python\ndef add_two(x):\n    return x + 2\n```"
    program = lambda ex, code: f"{code}\n{ex.reference}"  # noqa: E731
    assert pass_at_1([example], [answer], program) == [True]
    monkeypatch.setattr(sandbox, "BWRAP", f"/nonexistent/bwrap-{uuid.uuid4().hex}")
    assert pass_at_1([example], [answer], program) == [False]
