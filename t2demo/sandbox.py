"""Run untrusted Python (model-written code) inside bubblewrap, never outside it.

The boundary is the kernel, not Python: one `bwrap` sandbox per batch of snippets, with
- new user, PID, network, IPC, UTS and cgroup namespaces; no nested user namespaces; no network at all;
- a read-only view of only what the interpreter needs (its binary, its standard library without
  site-packages, the shared libraries `ldd` names), a fresh /proc, a minimal /dev, no /etc, no home,
  no project folder; a private size-limited tmpfs /tmp is the only writable place;
- an unprivileged uid: 65534 inside, and outside too (when we run as root, a first bwrap exposes the
  runtime under its private /tmp and `setpriv` drops to uid 65534 before the sandbox is built);
- no capabilities, no environment but LANG, HOME and PATH, no terminal (a new session), and death
  with its parent; a timed-out batch is killed as a process group, and its PID namespace with it.
Inside, a trusted driver runs as PID 1 (so snippets cannot signal it), non-dumpable (so they cannot
ptrace it or open its /proc files), and forks one child per snippet (forking is far cheaper than
starting Python, which matters when an eval checks a thousand answers). Each child gets its own
folder, stdout/stderr in memory files, rlimits (address space, CPU, file size, processes, open files,
no core dumps), a wall-clock timeout, and the audit hook below as defence in depth (it stops honest
mistakes and naive escapes with a clear message; it is not the boundary). After each snippet the
driver kills every other process in the sandbox and empties /tmp; if it cannot, it stops and the host
starts a fresh sandbox for the rest.
If bubblewrap is missing or the sandbox cannot start, no code runs: every result says
"not run: sandbox unavailable: <why>" (logged once), and the checker counts it as wrong.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

log = logging.getLogger(__name__)

BWRAP = "bwrap"  # Debian: apt-get install bubblewrap
SANDBOX_UID = 65534  # "nobody", inside the sandbox and, when we are root, outside it too
AUDIT_HOOK = True  # defence in depth; the escape tests also run without it, against bwrap alone
MAX_FORKS = 4  # audit-hook budget of os.fork per snippet
MAX_PROCS = 16  # RLIMIT_NPROC: processes of the sandbox uid, the driver included
MAX_OPEN_FILES = 64
OUTPUT_LIMIT = 64 * 1024  # bytes of stdout/stderr kept per snippet
FILE_LIMIT = 1024 * 1024  # largest file (stdout/stderr included) a snippet may write
TMPFS_BYTES = 64 * 1024 * 1024  # the sandbox's whole writable space
_READY = '{"ready": true}'
_RESTART = 75  # driver exit status: it could not clean up between snippets; start a fresh sandbox

# The driver, passed with -c; the job (snippets, limits) comes on stdin as JSON.
_DRIVER = r"""
import ctypes, json, os, resource, shutil, signal, sys, time, traceback

libc = ctypes.CDLL(None, use_errno=True)

def set_dumpable(flag):
    if libc.prctl(4, flag, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE)")

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

def isolate(folder, out, err, limits):
    # In the forked child, before any snippet code: its folder, its outputs, no inherited descriptors, limits.
    null = os.open("/dev/null", os.O_RDONLY)
    for src, dst in ((null, 0), (out, 1), (err, 2)):
        os.dup2(src, dst)
    for fd in os.listdir("/proc/self/fd"):
        if int(fd) > 2:
            try:
                os.close(int(fd))
            except OSError:
                pass
    set_dumpable(1)  # its own /proc files are its own; the driver stays non-dumpable
    os.chdir(folder)
    for name, value in limits:
        resource.setrlimit(getattr(resource, name), (value, value))

def run_snippet(folder, code, out, err, job):
    # In the forked child: isolate, hook, run the code as __main__; never returns.
    status = 1
    try:
        isolate(folder, out, err, job["limits"])
        with open("main.py", "w", encoding="utf-8") as f:
            f.write(code)
        compiled = compile(code, "main.py", "exec")
        sys.argv = ["main.py"]
        if job["hook"]:
            sys.addaudithook(make_hook(os.getcwd(), job["max_forks"]))
        exec(compiled, {"__name__": "__main__", "__builtins__": __builtins__})
        status = 0
    except SystemExit as e:
        status = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
        if not isinstance(e.code, (int, type(None))):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(status & 0xFF)

def wait(pid, timeout):
    # The child's exit code, or None when it ran out of time.
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.001)

def kill_others():
    # SIGKILL and reap every process in the sandbox but this one (PID 1); False if some would not go.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and p != "1"]
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.001)
    return False

def wipe():
    # Empty /tmp (whatever modes the snippet left); False if something stays.
    try:
        os.chmod("/tmp", 0o700)
        for top, dirs, _ in os.walk("/tmp"):
            for d in dirs:
                if not os.path.islink(os.path.join(top, d)):
                    os.chmod(os.path.join(top, d), 0o700)
        for name in os.listdir("/tmp"):
            path = os.path.join("/tmp", name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        return not os.listdir("/tmp")
    except (OSError, RecursionError):
        return False

def report(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

def main():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # PID 1 gets only signals it handles: none
    set_dumpable(0)
    job = json.load(sys.stdin)
    report({"ready": True})
    for i, code in enumerate(job["codes"]):
        folder = "/tmp/" + str(i)
        os.mkdir(folder, 0o700)
        out, err = os.memfd_create("stdout"), os.memfd_create("stderr")
        pid = os.fork()
        if pid == 0:
            run_snippet(folder, code, out, err, job)
        returncode = wait(pid, job["timeout"])
        clean = kill_others()
        texts = [os.pread(fd, job["output_limit"], 0).decode("utf-8", "replace") for fd in (out, err)]
        os.close(out)
        os.close(err)
        report({"returncode": returncode, "timed_out": returncode is None, "stdout": texts[0], "stderr": texts[1]})
        if not (clean and wipe()):
            sys.exit(RESTART)

main()
""".replace("RESTART", str(_RESTART))


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # exited with status 0 within the limits
    returncode: int | None  # None when timed out or not run; negative: killed by that signal
    stdout: str
    stderr: str  # "not run: sandbox unavailable: <why>" when the sandbox could not start
    timed_out: bool
    reason: str  # "ok", "error", "timeout", "memory", "blocked", "killed", "unavailable"


class SandboxUnavailable(RuntimeError):
    """bubblewrap cannot be used here; the message says why."""


def _shared_libraries(files: list[str]) -> set[str]:
    """Every shared library (and the loader) that `ldd` says these binaries load."""
    try:
        out = subprocess.run(["ldd", *files], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SandboxUnavailable(f"cannot list the interpreter's shared libraries with ldd: {e}") from e
    libs = set()
    for line in out.splitlines():  # "\tlibc.so.6 => /lib/.../libc.so.6 (0x...)" or "\t/lib64/ld-linux... (0x...)"
        words = line.split("=>")[-1].split()
        if line.startswith("\t") and words and words[0].startswith("/"):
            libs.add(words[0])
    return libs


@lru_cache(maxsize=1)
def _runtime() -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """The interpreter, the paths it needs (binary, stdlib, shared libraries) and stdlib folders to hide.

    The base interpreter, not the virtual environment's: the environment lives in the project folder.
    """
    exe = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix,
                                      "installed_base": sys.base_prefix, "installed_platbase": sys.base_exec_prefix})
    stdlibs = {paths["stdlib"], paths["platstdlib"]}
    modules = sorted(glob.glob(os.path.join(paths["platstdlib"], "lib-dynload", "*.so")))
    hidden = tuple(p for lib in sorted(stdlibs) for p in (os.path.join(lib, "site-packages"), os.path.join(lib, "dist-packages"))
                   if os.path.isdir(p))
    return exe, tuple(sorted({exe, *stdlibs, *_shared_libraries([exe, *modules])})), hidden


def _inner_flags() -> list[str]:
    """bwrap's options for the sandbox itself, apart from the runtime it shows."""
    uid = str(SANDBOX_UID)
    return ["--unshare-all", "--unshare-user", "--disable-userns", "--uid", uid, "--gid", uid, "--hostname", "sandbox",
            "--as-pid-1", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--clearenv", "--setenv", "LANG", "C.UTF-8", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin"]


def _tail_flags() -> list[str]:
    """The mounts after the runtime's: /proc, /dev, the only writable place /tmp; then the rest read-only."""
    return ["--proc", "/proc", "--dev", "/dev", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp", "--chdir", "/tmp",
            "--remount-ro", "/dev", "--remount-ro", "/"]


@lru_cache(maxsize=4)
def _launcher(bwrap: str) -> tuple[str, ...]:
    """The command that starts the driver in bubblewrap; raises SandboxUnavailable when there is none.

    As root, bwrap's user namespace would map the sandbox to uid 0 outside, so a first bwrap (real
    root, own mount namespace) shows each runtime path at /tmp/<k> and setpriv drops to SANDBOX_UID,
    which could not read a runtime under /root itself; the sandbox then binds /tmp/<k> back in place.
    """
    path = shutil.which(bwrap)
    if path is None:
        raise SandboxUnavailable(f"{bwrap} not found (install Debian's bubblewrap: apt-get install bubblewrap)")
    exe, views, hidden = _runtime()
    root = os.geteuid() == 0
    sources = [f"/tmp/{k}" if root else view for k, view in enumerate(views)]
    inner = [path, *_inner_flags()]
    for source, view in zip(sources, views):
        inner += ["--ro-bind", source, view]
    for folder in hidden:
        inner += ["--tmpfs", folder, "--remount-ro", folder]
    inner += [*_tail_flags(), exe, "-I", "-S", "-B", "-c", _DRIVER]
    if not root:
        return tuple(inner)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise SandboxUnavailable("running as root and setpriv (util-linux) is missing, so the sandbox cannot drop to an unprivileged uid")
    outer = [path, "--dev-bind", "/", "/", "--tmpfs", "/tmp", "--die-with-parent",
             "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    for source, view in zip(sources, views):
        outer += ["--ro-bind", view, source]
    uid = str(SANDBOX_UID)
    return (*outer, setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *inner)


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


def _result(report: dict) -> SandboxResult:
    reason = _reason(report["returncode"], report["timed_out"], report["stderr"])
    return SandboxResult(reason == "ok", report["returncode"], report["stdout"], report["stderr"], report["timed_out"], reason)


def _reports(stdout: bytes) -> list[dict] | None:
    """The driver's per-snippet reports, or None when it never said it was ready."""
    lines = stdout.decode("utf-8", "replace").splitlines()
    if not lines or lines[0] != _READY:
        return None
    reports = []
    for line in lines[1:]:
        try:
            reports.append(json.loads(line))
        except json.JSONDecodeError:  # cut off when the sandbox was killed
            break
    return reports


_warned: set[str] = set()


def _unavailable(n: int, why: str) -> list[SandboxResult]:
    """Results for snippets that were not run, with a warning logged once per cause."""
    if why not in _warned:
        _warned.add(why)
        log.warning("model-written code is NOT run and is scored as wrong: sandbox unavailable: %s", why)
    return [SandboxResult(False, None, "", f"not run: sandbox unavailable: {why}", False, "unavailable")] * n


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _job(codes: list[str], timeout_s: float, memory_mb: int) -> bytes:
    limits = [("RLIMIT_AS", memory_mb * 1024 * 1024), ("RLIMIT_CPU", int(timeout_s) + 1), ("RLIMIT_FSIZE", FILE_LIMIT),
              ("RLIMIT_CORE", 0), ("RLIMIT_NPROC", MAX_PROCS), ("RLIMIT_NOFILE", MAX_OPEN_FILES)]
    return json.dumps({"codes": codes, "timeout": timeout_s, "limits": limits, "hook": AUDIT_HOOK,
                       "max_forks": MAX_FORKS, "output_limit": OUTPUT_LIMIT}).encode()


def _attempt(codes: list[str], timeout_s: float, memory_mb: int) -> list[SandboxResult]:
    """One sandbox over `codes`: the results of those it got through, in order (at least one)."""
    try:
        cmd = _launcher(BWRAP)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}, start_new_session=True)
    except (SandboxUnavailable, OSError) as e:
        return _unavailable(len(codes), str(e))
    try:
        out, err = proc.communicate(_job(codes, timeout_s, memory_mb), timeout=len(codes) * (timeout_s + 6) + 10)
    except subprocess.TimeoutExpired:  # the sandbox itself hung: report what finished
        _kill(proc)
        out, err = proc.communicate()
    finally:
        _kill(proc)
    reports = _reports(out)
    if reports is None:
        lines = err.decode("utf-8", "replace").strip().splitlines() or ["no message"]
        return _unavailable(len(codes), f"{lines[-1]} (exit status {proc.returncode})")
    results = [_result(r) for r in reports[:len(codes)]]
    if len(results) < len(codes) and (proc.returncode != _RESTART or not results):
        results.append(SandboxResult(False, None, "", "sandbox: it stopped while running this snippet", False, "killed"))
    return results


def _run_batch(codes: list[str], timeout_s: float, memory_mb: int) -> list[SandboxResult]:
    """Run snippets one after another in one sandbox, starting a fresh one if it had to stop."""
    results: list[SandboxResult] = []
    while len(results) < len(codes):
        results += _attempt(codes[len(results):], timeout_s, memory_mb)
    return results


def run_python(code: str, timeout_s: float = 5.0, memory_mb: int = 256) -> SandboxResult:
    """Run `code` as a script in the sandbox and report what happened."""
    return _run_batch([code], timeout_s, memory_mb)[0]


def run_many(codes: list[str], timeout_s: float = 5.0, memory_mb: int = 256, workers: int | None = None) -> list[SandboxResult]:
    """run_python over many snippets: `workers` sandboxes, each running its share in turn."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(codes)))
    shares = [codes[w::workers] for w in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(lambda share: _run_batch(share, timeout_s, memory_mb) if share else [], shares))
    results: list[SandboxResult] = [None] * len(codes)  # type: ignore[list-item]
    for w, part in enumerate(parts):
        results[w::workers] = part
    return results
