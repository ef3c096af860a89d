"""Running untrusted Python (a model's code answer) in a confined child process.

Confinement, all of it set up before the answer's first line runs:

- a separate ``python -I`` process in a fresh temporary directory (its cwd, HOME and TMPDIR), with
  a minimal environment, no stdin, in its own session (killed as a group on timeout);
- resource limits: address space (``memory_mb``), CPU seconds, wall-clock ``timeout_s``, file size
  (16 MB), no new processes (``RLIMIT_NPROC`` 0), no core dumps;
- an audit hook (PEP 578) that refuses sockets, subprocesses, ``fork``/``exec``/``system``, signals
  to other processes, ``ctypes`` and any file write, delete, rename or chmod outside the temporary
  directory;
- where the kernel allows unprivileged user namespaces (``unshare -Urn`` works), a network
  namespace with no interfaces on top.

`sandbox_support` says whether this platform can do it (POSIX with ``resource``: Linux, macOS);
elsewhere code grading stays off. Code grading is opt-in in any case (``run_code=True``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache

#: runs in the child before the program: limits, then the audit hook, then the program
_BOOT = r'''
import os, resource, sys
tmp, mem, cpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def limit(name, value):
    kind = getattr(resource, name, None)
    if kind is None:
        return
    soft, hard = resource.getrlimit(kind)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    try:
        resource.setrlimit(kind, (value, value))
    except (ValueError, OSError):
        resource.setrlimit(kind, (min(value, soft) if soft != resource.RLIM_INFINITY else value, hard))
limit("RLIMIT_AS", mem * 1024 * 1024)
limit("RLIMIT_CPU", cpu)
limit("RLIMIT_FSIZE", 16 * 1024 * 1024)
limit("RLIMIT_CORE", 0)
limit("RLIMIT_NPROC", 0)
src = open(os.path.join(tmp, "answer.py"), encoding="utf-8").read()
root = os.path.realpath(tmp) + os.sep
def inside(path):
    try:
        p = os.fsdecode(path) if not isinstance(path, int) else None
    except TypeError:
        return False
    return p is not None and (os.path.realpath(os.path.join(tmp, p)) + os.sep).startswith(root)
BLOCKED = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
           "os.forkpty", "pty.", "os.kill", "os.killpg", "signal.pthread_kill", "ctypes.", "webbrowser.",
           "urllib.Request", "http.client.", "ftplib.", "smtplib.", "imaplib.", "poplib.", "telnetlib.",
           "os.putenv", "os.unsetenv", "resource.setrlimit", "resource.prlimit", "sys.remote_exec")
PATHS = ("os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.chmod", "os.chown", "os.symlink",
         "os.link", "os.truncate", "os.utime", "shutil.", "os.chflags", "os.lchflags", "os.mkfifo", "os.mknod")
def hook(event, args):
    if event == "import" and args and str(args[0]).split(".")[0] in ("ctypes", "_ctypes", "cffi"):
        raise PermissionError(f"sandbox: import of {args[0]} refused")
    if event.startswith(BLOCKED):
        raise PermissionError(f"sandbox: {event} refused")
    if event == "open" and len(args) >= 3:
        path, mode, flags = args[0], args[1], args[2] or 0
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
        if writes and not inside(path):
            raise PermissionError(f"sandbox: writing {path!r} outside the sandbox refused")
    elif event.startswith(PATHS):
        for a in args:
            if isinstance(a, (str, bytes, os.PathLike)) and not inside(a):
                raise PermissionError(f"sandbox: {event} on {a!r} refused")
sys.addaudithook(hook)
del limit, hook
code = compile(src, "answer.py", "exec")
exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
'''


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed run ended."""

    passed: bool
    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def detail(self) -> str:
        """One line: passed, timed out, or the last line of the error."""
        if self.passed:
            return "tests passed"
        if self.timed_out:
            return "timed out"
        lines = [x for x in self.stderr.strip().splitlines() if x.strip()]
        return lines[-1][:300] if lines else f"exit code {self.returncode}"


def sandbox_support() -> tuple[bool, str]:
    """(can code be confined here, why not if it cannot)."""
    if os.name != "posix":
        return False, f"no POSIX resource limits on {sys.platform}"
    try:
        import resource  # noqa: F401
    except ImportError:
        return False, "the resource module is unavailable"
    if not hasattr(sys, "addaudithook"):
        return False, "Python has no audit hooks (needs 3.8+)"
    return True, ""


@lru_cache(maxsize=1)
def network_namespace_prefix() -> tuple[str, ...]:
    """``("unshare", "-Urn")`` where an unprivileged network namespace can be made, else ``()``."""
    exe = shutil.which("unshare")
    if exe is None or not sys.platform.startswith("linux"):
        return ()
    try:
        ok = subprocess.run([exe, "-Urn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (exe, "-Urn") if ok else ()


def _tail(path: str, limit: int = 20_000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_python(program: str, timeout_s: float = 10.0, memory_mb: int = 512) -> SandboxResult:
    """Run ``program`` confined (see the module doc); passed = it exited 0 within the limits."""
    ok, why = sandbox_support()
    if not ok:
        raise RuntimeError(f"code cannot be confined on this platform: {why}")
    with tempfile.TemporaryDirectory(prefix="scope-sandbox-") as tmp:
        with open(os.path.join(tmp, "answer.py"), "w", encoding="utf-8") as f:
            f.write(program)
        out, err = os.path.join(tmp, ".stdout"), os.path.join(tmp, ".stderr")
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        cmd = [*network_namespace_prefix(), sys.executable, "-I", "-B", "-c", _BOOT, tmp, str(int(memory_mb)), str(int(timeout_s) + 1)]
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                    start_new_session=True, close_fds=True)
            try:
                code: int | None = proc.wait(timeout=timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out, code = True, None
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        return SandboxResult(code == 0 and not timed_out, code, timed_out, _tail(out), _tail(err))
