"""Run untrusted Python (model-written code) in separate, locked-down processes.

One sandbox process runs a trusted driver that forks one child per snippet (forking is ~50x
cheaper than starting Python, which matters when an eval checks a thousand answers). Layers:
1. Kernel namespaces, when `unshare` works (checked once): a new user + network namespace has no
   usable network at all, not even loopback; a new PID namespace means every process a snippet
   starts dies with the sandbox, even one that left its process group.
2. Per snippet, before its code runs: its own folder, limits on address space (memory), CPU
   seconds, file size and core dumps, a wall-clock timeout after which its process group is
   killed, and whatever it left running is killed too.
3. Per snippet, an audit hook (PEP 578): refuses sockets, process spawning, signals, ctypes, and
   any write/delete/rename outside the snippet's folder; os.fork gets a budget (at most
   2**MAX_FORKS processes). Audit hooks are not a security boundary on their own: they stop honest
   mistakes and naive escapes, and are the only network barrier where namespaces are unavailable.
The driver runs as `python -I -S -B` (no environment variables, no site-packages: stdlib only) in a
fresh temporary folder with a minimal environment and stdin closed; the folder is removed after.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

MAX_FORKS = 4
OUTPUT_LIMIT = 64 * 1024  # bytes of stdout/stderr kept per snippet
FILE_LIMIT = 1024 * 1024  # largest file (stdout/stderr included) a snippet may write

# The driver, passed with -c so that no snippet can edit it. argv: timeout_s, n, memory, cpu, fsize.
_DRIVER = r"""
import json, os, resource, signal, sys, time, traceback

def make_hook(root, max_forks):
    forks = [0]
    deny_prefixes = ("socket.", "ctypes.", "subprocess.", "os.exec", "os.posix_spawn", "os.spawn", "pty.")
    deny = {"os.system", "os.kill", "os.killpg", "signal.pthread_kill", "os.forkpty", "os.startfile", "webbrowser.open"}
    path_events = {"os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.link", "os.symlink",
                   "os.truncate", "os.utime", "os.setxattr", "os.removexattr", "shutil.rmtree", "shutil.move",
                   "shutil.copyfile", "shutil.copytree", "shutil.chown", "shutil.make_archive", "shutil.unpack_archive"}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    realpath, sep, fspath = os.path.realpath, os.sep, os.fspath

    def inside(path):
        if isinstance(path, int):  # an already open descriptor
            return True
        path = realpath(fspath(path))
        if isinstance(path, bytes):
            path = path.decode("utf-8", "surrogateescape")
        return path == root or path.startswith(root + sep)

    def hook(event, args):
        if event in deny or event.startswith(deny_prefixes):
            raise PermissionError("sandbox: " + event + " is not allowed")
        if event == "os.fork":
            forks[0] += 1
            if forks[0] > max_forks:
                raise PermissionError("sandbox: fork budget used up")
        elif event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(ch in mode for ch in "wax+")) or (mode is None and flags & write_flags)
            if writing and not inside(path):
                raise PermissionError("sandbox: writing outside the sandbox folder is not allowed")
        elif event in path_events and not all(inside(a) for a in args if isinstance(a, (str, bytes, os.PathLike))):
            raise PermissionError("sandbox: " + event + " outside the sandbox folder is not allowed")

    return hook

def run_snippet(folder, limits):
    # In the forked child: redirect output, limit, hook, run main.py as __main__; never returns.
    os.setpgid(0, 0)
    for fd, name in ((1, folder + ".out"), (2, folder + ".err")):
        f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    os.chdir(folder)
    status = 0
    try:
        for kind, value in zip((resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_FSIZE, resource.RLIMIT_CORE),
                               limits + (0,)):
            resource.setrlimit(kind, (value, value))
        with open("main.py", encoding="utf-8") as f:
            code = compile(f.read(), "main.py", "exec")
        sys.argv = ["main.py"]
        sys.addaudithook(make_hook(os.getcwd(), MAX_FORKS))
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as e:
        status = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
        if not isinstance(e.code, (int, type(None))):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        status = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(status & 0xFF)

def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass

timeout, n = float(sys.argv[1]), int(sys.argv[2])
limits = tuple(int(v) for v in sys.argv[3:6])
for i in range(n):
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        run_snippet(str(i), limits)
    try:
        os.setpgid(pid, pid)  # also here, so the group exists before we may need to kill it
    except OSError:
        pass
    deadline, timed_out = time.monotonic() + timeout, False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            timed_out = True
            kill_group(pid)
            status = os.waitpid(pid, 0)[1]
            break
        time.sleep(0.001)
    kill_group(pid)  # whatever the snippet left running
    print(json.dumps({"returncode": None if timed_out else os.waitstatus_to_exitcode(status), "timed_out": timed_out}))
""".replace("MAX_FORKS", str(MAX_FORKS))


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # exited with status 0 within the limits
    returncode: int | None  # None when timed out; negative: killed by that signal
    stdout: str
    stderr: str
    timed_out: bool
    reason: str  # "ok", "error", "timeout", "memory", "blocked", "killed"


@lru_cache(maxsize=1)
def namespace_prefix() -> tuple[str, ...]:
    """The `unshare` command that isolates network and processes, or () where the kernel refuses it."""
    cmd = ("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child")
    if shutil.which("unshare") is None:
        return ()
    try:
        probe = subprocess.run([*cmd, "true"], stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return cmd if probe.returncode == 0 else ()


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(OUTPUT_LIMIT).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _reason(returncode: int | None, timed_out: bool, stderr: str) -> str:
    if timed_out:
        return "timeout"
    if returncode == 0:
        return "ok"
    if "MemoryError" in stderr:
        return "memory"
    if "PermissionError: sandbox:" in stderr:
        return "blocked"
    return "killed" if returncode is None or returncode < 0 else "error"


def _run_batch(codes: list[str], timeout_s: float, memory_mb: int) -> list[SandboxResult]:
    """Run snippets one after another in a single sandbox process."""
    with tempfile.TemporaryDirectory(prefix="t2demo-sandbox-") as root:
        for i, code in enumerate(codes):
            os.mkdir(os.path.join(root, str(i)))
            with open(os.path.join(root, str(i), "main.py"), "w", encoding="utf-8") as f:
                f.write(code)
        limits = [str(memory_mb * 1024 * 1024), str(int(timeout_s) + 1), str(FILE_LIMIT)]
        cmd = [*namespace_prefix(), sys.executable, "-I", "-S", "-B", "-c", _DRIVER, str(timeout_s), str(len(codes)), *limits]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            report, _ = proc.communicate(timeout=len(codes) * (timeout_s + 1) + 10)
        except subprocess.TimeoutExpired:  # the driver itself hung: report what finished
            os.killpg(proc.pid, signal.SIGKILL)
            report, _ = proc.communicate()
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        statuses = [json.loads(line) for line in report.decode().splitlines()]
        results = []
        for i in range(len(codes)):
            status = statuses[i] if i < len(statuses) else {"returncode": None, "timed_out": True}
            stdout, stderr = _read(os.path.join(root, f"{i}.out")), _read(os.path.join(root, f"{i}.err"))
            reason = _reason(status["returncode"], status["timed_out"], stderr)
            results.append(SandboxResult(reason == "ok", status["returncode"], stdout, stderr, status["timed_out"], reason))
        return results


def run_python(code: str, timeout_s: float = 5.0, memory_mb: int = 256) -> SandboxResult:
    """Run `code` as a script in the sandbox and report what happened."""
    return _run_batch([code], timeout_s, memory_mb)[0]


def run_many(codes: list[str], timeout_s: float = 5.0, memory_mb: int = 256, workers: int | None = None) -> list[SandboxResult]:
    """run_python over many snippets: `workers` sandbox processes, each running its share in turn."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(codes)))
    shares = [codes[w::workers] for w in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(lambda share: _run_batch(share, timeout_s, memory_mb) if share else [], shares))
    results: list[SandboxResult] = [None] * len(codes)  # type: ignore[list-item]
    for w, part in enumerate(parts):
        results[w::workers] = part
    return results
