"""The sandbox that runs model-written code: limits, kills, and what it refuses."""

import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

from t2demo import sandbox
from t2demo.sandbox import namespace_prefix, run_many, run_python


@pytest.fixture(params=["namespaces", "hook-only"])
def layers(request, monkeypatch):
    """Run a test with kernel namespaces (where available) and as on machines without them."""
    if request.param == "hook-only":
        monkeypatch.setattr(sandbox, "namespace_prefix", lambda: ())
    elif not namespace_prefix():
        pytest.skip("user/network namespaces are not available here")
    return request.param


def _processes_in(folder: str) -> list[int]:
    """Pids of processes whose working directory is (or was) `folder`."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(folder):
                pids.append(int(pid))
        except OSError:
            pass
    return pids


def test_normal_code_runs_and_prints():
    r = run_python("import math\nprint('hello', math.factorial(5))\nopen('note.txt', 'w').write('inside is fine')")
    assert r.ok and r.reason == "ok" and r.returncode == 0 and not r.timed_out
    assert r.stdout == "hello 120\n"


def test_errors_are_reported():
    r = run_python("raise ValueError('nope')")
    assert not r.ok and r.reason == "error" and "ValueError: nope" in r.stderr
    assert run_python("def f(:\n    pass").reason == "error"


def test_infinite_loop_is_killed_in_time():
    start = time.monotonic()
    r = run_python("while True:\n    pass", timeout_s=1.0)
    assert r.timed_out and r.reason == "timeout" and not r.ok
    assert time.monotonic() - start < 2.5


@pytest.mark.parametrize("parent", ["while True:\n    pass", "print('parent exits')"])
def test_child_processes_die_with_the_sandbox(parent, layers):
    code = f"import os, time\nprint(os.getcwd(), flush=True)\nif os.fork() == 0:\n    time.sleep(1000)\n{parent}\n"
    start = time.monotonic()
    r = run_python(code, timeout_s=1.0)
    assert time.monotonic() - start < 2.5
    folder = r.stdout.split()[0]
    assert "t2demo-sandbox-" in folder and not os.path.exists(folder)
    time.sleep(0.2)
    assert _processes_in(folder) == []


def test_fork_bomb_is_bounded():
    r = run_python("import os\nn = 0\nwhile True:\n    os.fork()\n    n += 1", timeout_s=2.0)
    assert "fork budget" in r.stderr and not r.timed_out


def test_memory_hog_is_stopped(layers):
    r = run_python("x = bytearray(2 * 1024 ** 3)", memory_mb=256)
    assert r.reason == "memory" and "MemoryError" in r.stderr
    r = run_python("x = []\nwhile True:\n    x.append(' ' * 10 ** 6)", memory_mb=256, timeout_s=10)
    assert r.reason == "memory" and not r.timed_out


def test_output_is_capped():
    r = run_python("print('x' * 10 ** 8)")
    assert not r.ok and len(r.stdout) <= 64 * 1024


def test_writes_outside_the_folder_are_blocked(tmp_path, layers):
    target = tmp_path / f"escape-{uuid.uuid4().hex}.txt"
    r = run_python(f"open({str(target)!r}, 'w').write('escaped')")
    assert r.reason == "blocked" and not target.exists()
    victim = tmp_path / "keep.txt"
    victim.write_text("keep")
    for attack in (f"import os\nos.remove({str(victim)!r})", f"import os\nos.rename({str(victim)!r}, 'x')",
                   f"import shutil\nshutil.rmtree({str(tmp_path)!r})",
                   f"import os\nos.symlink({str(victim)!r}, 'link')\nopen('link', 'w').write('x')"):
        assert run_python(attack).reason == "blocked", attack
    assert victim.read_text() == "keep"


def test_spawning_and_signals_are_blocked(layers):
    for attack in ("import subprocess\nsubprocess.run(['true'])", "import os\nos.system('true')",
                   "import os\nos.execv('/bin/true', ['true'])", "import os\nos.kill(1, 0)", "import ctypes"):
        assert run_python(attack).reason == "blocked", attack


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    yield server
    server.close()


def _nobody_called(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
        return False
    except socket.timeout:
        return True


def test_network_is_blocked(listener, layers):
    port = listener.getsockname()[1]
    for address in (f"('127.0.0.1', {port})", "('1.1.1.1', 53)", "('8.8.8.8', 443)"):
        r = run_python(f"import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect({address})\nprint('connected')")
        assert not r.ok and "connected" not in r.stdout, address
    assert _nobody_called(listener)


def test_network_namespace_alone_blocks_connections(listener):
    """The kernel layer, without the audit hook: a fresh network namespace has no route anywhere."""
    prefix = namespace_prefix()
    if not prefix:
        pytest.skip("user/network namespaces are not available here; the audit hook is the only barrier")
    port = listener.getsockname()[1]
    for address in (("127.0.0.1", port), ("1.1.1.1", 53)):
        code = f"import socket\ns = socket.socket()\ns.settimeout(2)\nprint(s.connect_ex({address!r}))"
        out = subprocess.run([*prefix, sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=20)
        assert out.returncode == 0 and out.stdout.strip() != "0", address
    assert _nobody_called(listener)


def test_run_many_keeps_order():
    results = run_many([f"print({i} * {i})" for i in range(12)] + ["raise SystemExit(3)"])
    assert [r.stdout.strip() for r in results[:12]] == [str(i * i) for i in range(12)]
    assert results[-1].returncode == 3 and not results[-1].ok


def test_snippets_in_one_batch_are_isolated():
    codes = ["while True:\n    pass", "print('after a hang')", "import sys\nsys.exit(3)", "open('f', 'w').write('x')",
             "import os\nprint(os.path.exists('f'))", "import faulthandler\nfaulthandler._sigsegv()",
             "import builtins\nbuiltins.print = None", "print('print still works')"]
    r = run_many(codes, timeout_s=1.0, workers=1)
    assert r[0].reason == "timeout" and r[1].stdout == "after a hang\n"
    assert r[2].returncode == 3 and r[2].reason == "error" and r[3].ok
    assert r[4].stdout == "False\n"  # every snippet has its own folder
    assert r[5].reason == "killed" and r[5].returncode == -11
    assert r[7].stdout == "print still works\n"
