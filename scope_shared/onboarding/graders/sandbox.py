"""Running untrusted Python (a model's code answer) in an OS-level sandbox, graded by a harness it
cannot reach.

Each grade starts two processes, each in its own bubblewrap (``bwrap``) sandbox, joined only by
two pipes (see `sandbox_child` for what runs inside):

- the **answer** process runs the answer's code and serves calls into it;
- the **harness** process runs the tests, calling the answer's functions through those pipes
  (only plain data crosses back), and writes the verdict with a per-grade nonce on a third pipe
  that only it holds. The verdict is never read from an exit status: an answer that exits early,
  raises ``SystemExit``, registers ``atexit`` handlers or kills itself has not passed.

Each sandbox has new user, PID, network, IPC, UTS and cgroup namespaces (no network at all, no
other process visible, nested user namespaces off), runs as uid/gid 65534 with no capabilities,
in a new session, and dies with its parent. Its file system holds only what Python needs, read
only: ``/usr`` (and the ``/lib*``, ``/bin`` links), the dynamic linker's cache, the interpreter's
install and its site-packages (numpy imports); plus ``/proc`` of its own PID namespace, a minimal
``/dev`` and a 16 MB ``/tmp`` (the working directory). No home directory, no project files, no
history stores, no ``/etc`` beyond the linker's files. Inside, before the first line of the
answer: resource limits (address space ``memory_mb``, CPU seconds, 16 MB files, no core dumps)
and, on x86-64 and AArch64, a seccomp filter that refuses new processes and exec. After each
grade both sandboxes are killed; each PID namespace dies with its init, so nothing outlives it.

`sandbox_support` says whether bubblewrap is there and can make namespaces here. Without it,
code grading refuses (`run_code=True`) with how to install it; ``unsafe=True`` runs the same two
processes without the namespaces (resource limits and seccomp only) and says so loudly.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from scope_shared.onboarding.graders import sandbox_child

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap; "
    "`make test` installs it where it can), or pass run_code=\"unsafe\" to run code answers without "
    "the sandbox (only for answers you trust)"
)
TMPFS_BYTES = 16 * 1024 * 1024
SANDBOX_UID = 65534
_CHILD_SOURCE = Path(sandbox_child.__file__).read_text(encoding="utf-8")
_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed run ended. ``passed`` comes from the harness's verdict, never an exit status."""

    passed: bool
    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    reason: str = ""

    @property
    def detail(self) -> str:
        """One line: passed, timed out, or why not."""
        if self.passed:
            return "tests passed"
        if self.timed_out:
            return "timed out"
        if self.reason:
            return self.reason[:300]
        lines = [x for x in self.stderr.strip().splitlines() if x.strip()]
        return lines[-1][:300] if lines else f"exit code {self.returncode}"


def find_bwrap() -> str | None:
    """The bubblewrap executable on PATH, or None."""
    return shutil.which("bwrap")


def _python_paths() -> tuple[str, str, list[str]]:
    """(interpreter, its install prefix, the site-packages dirs outside that prefix)."""
    exe = os.path.realpath(sys.executable)
    prefixes = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}
    sites = []
    for d in [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]:
        d = os.path.realpath(d)
        if os.path.isdir(d) and d not in sites:
            sites.append(d)
    return exe, os.path.realpath(sys.base_prefix), sites + [p for p in prefixes if p != os.path.realpath(sys.base_prefix)]


def _inside(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def bwrap_prefix(bwrap: str) -> tuple[list[str], list[str]]:
    """(the bwrap command up to the program, the site-packages dirs as seen inside)."""
    exe, prefix, extra = _python_paths()
    cmd = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
           "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL",
           "--hostname", "sandbox", "--clearenv"]
    for k, v in _ENV.items():
        cmd += ["--setenv", k, v]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d"):
        if os.path.exists(f):
            cmd += ["--ro-bind", f, f]
    if not _inside(prefix, "/usr"):
        cmd += ["--ro-bind", prefix, prefix]  # same path: interpreters carry absolute library paths
    inside_sites = []
    for i, d in enumerate(extra):
        if _inside(d, "/usr") or _inside(d, prefix):
            inside_sites.append(d)
        else:
            inside_sites.append(f"/sandbox/site-packages/{i}")
            cmd += ["--ro-bind", d, inside_sites[-1]]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
            "--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp", "--chdir", "/tmp", "--remount-ro", "/", "--", exe]
    return cmd, inside_sites


@lru_cache(maxsize=4)
def _probe(bwrap: str) -> str:
    """'' if a bwrap sandbox starts here and runs Python with numpy's site-packages, else why not."""
    cmd, sites = bwrap_prefix(bwrap)
    code = "import sys, site\n[site.addsitedir(p) for p in sys.argv[1:]]\nprint('ok')"
    try:
        out = subprocess.run([*cmd, "-I", "-S", "-c", code, *sites], capture_output=True, timeout=30,
                             env=_ENV, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        return f"bubblewrap could not start: {e}"
    if out.returncode != 0 or out.stdout.strip() != b"ok":
        err = out.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bubblewrap cannot make a sandbox here ({err[-1] if err else f'exit {out.returncode}'})"
    return ""


def sandbox_support() -> tuple[bool, str]:
    """(can code answers be sandboxed here, why not if they cannot)."""
    if not sys.platform.startswith("linux"):
        return False, f"the code sandbox (bubblewrap) needs Linux, not {sys.platform}; {INSTALL_HINT}"
    bwrap = find_bwrap()
    if bwrap is None:
        return False, f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
    why = _probe(bwrap)
    return (False, f"{why}; {INSTALL_HINT}") if why else (True, "")


def warn_unsafe() -> None:
    """Say loudly that code answers will run without the sandbox."""
    msg = ("run_code='unsafe': code answers run WITHOUT the sandbox (no namespaces: they can read your "
           "files and reach the network); use it only for answers you trust")
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    logger.warning(msg)


def _read_tail(f, limit: int = 200_000) -> str:
    f.seek(0, os.SEEK_END)
    f.seek(max(0, f.tell() - limit))
    return f.read().decode("utf-8", "replace")


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    proc.wait()


def run_tests(code: str, tests: str, timeout_s: float = 10.0, memory_mb: int = 512, *, stub: str | None = None,
              entry_point: str | None = None, unsafe: bool = False) -> SandboxResult:
    """Run ``code`` (the answer's program) and ``tests`` against it, each in its own sandbox; passed
    only if the harness says every test passed within the limits. ``stub`` (the question's own code)
    is run in the harness too, so its helpers cannot be replaced by the answer's."""
    if unsafe:
        prefix, sites, cwd = [os.path.realpath(sys.executable)], _python_paths()[2], None
    else:
        ok, why = sandbox_support()
        if not ok:
            raise RuntimeError(f"code answers cannot be sandboxed here: {why}")
        prefix, sites = bwrap_prefix(find_bwrap() or "bwrap")
        cwd = None
    seccomp = "1" if sandbox_child.seccomp_program() is not None else "0"
    cpu = str(int(timeout_s) + 1)
    nonce = secrets.token_hex(16)
    req_r, req_w = os.pipe()  # harness -> answer
    resp_r, resp_w = os.pipe()  # answer -> harness
    verdict_r, verdict_w = os.pipe()  # harness -> here
    job = json.dumps({"nonce": nonce, "tests": tests, "stub": stub or "", "entry_point": entry_point or ""}).encode()

    def command(role: str, fds: list[int]) -> list[str]:
        return [*prefix, "-I", "-S", "-c", _CHILD_SOURCE, role, str(int(memory_mb)), cpu, seccomp,
                *map(str, fds), "--", *sites]

    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="scope-sandbox-") as work, \
            tempfile.TemporaryFile() as a_out, tempfile.TemporaryFile() as a_err, \
            tempfile.TemporaryFile() as h_out, tempfile.TemporaryFile() as h_err:
        try:
            answer = subprocess.Popen(command("answer", [req_r, resp_w]), stdin=subprocess.PIPE, stdout=a_out,
                                      stderr=a_err, pass_fds=(req_r, resp_w), start_new_session=True,
                                      env=dict(_ENV, HOME=work, TMPDIR=work) if unsafe else _ENV,
                                      cwd=work if unsafe else cwd)
            procs.append(answer)
            harness = subprocess.Popen(command("harness", [resp_r, req_w, verdict_w]), stdin=subprocess.PIPE,
                                       stdout=h_out, stderr=h_err, pass_fds=(resp_r, req_w, verdict_w),
                                       start_new_session=True, env=_ENV, cwd=work if unsafe else cwd)
            procs.append(harness)
        finally:
            for fd in (req_r, resp_w, resp_r, req_w, verdict_w):
                os.close(fd)
            if len(procs) < 2:
                for p in procs:
                    _kill(p)
                os.close(verdict_r)
        start = time.monotonic()
        for proc, data in ((answer, code.encode("utf-8", "replace")), (harness, job)):
            try:
                proc.stdin.write(data)
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        timed_out = False
        try:
            harness.wait(timeout=max(0.1, timeout_s - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            timed_out = True
        for p in procs:  # the whole tree: each PID namespace dies with its init
            _kill(p)
        verdict = b""
        with os.fdopen(verdict_r, "rb") as f:
            os.set_blocking(verdict_r, False)
            try:
                verdict = f.read(4096) or b""
            except (BlockingIOError, OSError):
                pass
        passed, reason = False, ""
        try:
            v = json.loads(verdict.decode("utf-8", "replace").splitlines()[0])
            if v.get("nonce") == nonce:
                passed, reason = v.get("passed") is True, str(v.get("detail", ""))
            else:
                reason = "the verdict did not carry this grade's nonce"
        except (ValueError, IndexError, AttributeError):
            if not timed_out:
                tail = [x for x in _read_tail(h_err).splitlines() if x.strip()]
                reason = "the test harness gave no verdict" + (f" ({tail[-1][:200]})" if tail else "")
        return SandboxResult(passed and not timed_out, answer.returncode, timed_out, _read_tail(a_out), _read_tail(a_err),
                             reason)


def run_python(program: str, timeout_s: float = 10.0, memory_mb: int = 512, *, unsafe: bool = False) -> SandboxResult:
    """Run ``program`` sandboxed (see the module doc); passed = it ran to its end (an early exit of
    any kind, an error, the time or memory limit: not passed)."""
    return run_tests(program, "", timeout_s, memory_mb, unsafe=unsafe)
