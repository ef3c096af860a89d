"""The code that runs inside the sandbox (standard library only: it runs as ``python -I -S -c``).

Two roles, each in its own sandbox, joined only by two pipes the host made:

- ``answer``: reads the answer's program on stdin, runs it, then serves calls into it. It never
  sees the tests, the verdict channel or the nonce.
- ``harness``: reads the tests and a nonce on stdin, runs the tests with every top-level name of
  the answer replaced by a proxy that calls into the answer's process, and writes the verdict
  (nonce, passed, detail) on a pipe only it holds. Only plain data (numbers, strings, bytes,
  lists, tuples, sets, dicts) crosses back, decoded here into fresh built-in objects, so an answer
  cannot hand the tests an object that equals everything, skip an assert, or exit with status 0
  to pass; anything it does to its own process ends at the pipe. Other objects stay in the
  answer's process and are reached through handles that never compare equal to a value.

Both roles first set resource limits and, on x86-64 and AArch64 Linux, a seccomp filter that
refuses new processes (threads stay allowed), exec, ptrace, other processes' memory, pidfds,
namespaces, mounts, keyrings, BPF and io_uring.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import traceback

MAX_MESSAGE = 32 * 1024 * 1024  # bytes of one message between the two processes
MAX_DEPTH = 200  # nesting of a value sent as data; deeper goes as a handle
MAX_REFS = 100_000
MAX_NAME_BYTES = 1024 * 1024  # a top-level value bigger than this as data is sent as a handle

# ---------------------------------------------------------------- limits and seccomp


def set_limits(memory_mb: int, cpu_s: int) -> None:
    """Address space, CPU seconds, file size (16 MB), no core dumps; lowered only, never raised."""
    import resource

    def limit(name: str, value: int) -> None:
        kind = getattr(resource, name, None)
        if kind is None:
            return
        soft, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))

    limit("RLIMIT_AS", memory_mb * 1024 * 1024)
    limit("RLIMIT_CPU", cpu_s)
    limit("RLIMIT_FSIZE", 16 * 1024 * 1024)
    limit("RLIMIT_CORE", 0)


# syscall numbers refused (EPERM); clone is allowed only with CLONE_THREAD, clone3 answers ENOSYS
# (the C library then falls back to clone, which the filter can inspect)
_DENY = {
    "x86_64": (0xC000003E, 56, 435, [
        57, 58, 59, 322,  # fork vfork execve execveat
        101, 310, 311, 440,  # ptrace process_vm_readv/writev process_madvise
        434, 424, 438,  # pidfd_open pidfd_send_signal pidfd_getfd
        165, 166, 272, 308, 155, 161,  # mount umount2 unshare setns pivot_root chroot
        248, 249, 250, 321, 298, 323, 425, 426, 427,  # keys, bpf, perf, userfaultfd, io_uring
        135, 246, 320, 175, 313, 176, 303, 304,  # personality kexec modules handles
        133, 259, 163, 167, 168, 169, 103, 179, 153, 172, 173, 154, 227, 164, 159,
    ]),
    "aarch64": (0xC00000B7, 220, 435, [
        221, 281,  # execve execveat
        117, 270, 271, 440,
        434, 424, 438,
        40, 39, 97, 268, 41, 51,
        217, 218, 219, 280, 241, 282, 425, 426, 427,
        92, 104, 294, 105, 273, 106, 264, 265,
        33, 89, 224, 225, 142, 116, 60, 58, 112, 170, 171,
    ]),
}


def seccomp_program() -> bytes | None:
    """The filter as a classic BPF program for this machine, or None where it has no table."""
    import platform
    import struct

    table = _DENY.get(platform.machine())
    if table is None:
        return None
    arch, clone_nr, clone3_nr, deny = table
    allow, eperm, enosys, kill = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38, 0x80000000
    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    prog: list[tuple[int, int, int, int]] = [
        (ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, kill),  # another ABI: kill
        (ld, 0, 0, 0),
        (0x35, 0, 1, 0x40000000), (ret, 0, 0, kill),  # jge: x32 numbers on x86-64
    ]
    for nr in deny:
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, eperm)]
    prog += [(jeq, 0, 1, clone3_nr), (ret, 0, 0, enosys)]
    prog += [(jeq, 0, 3, clone_nr), (ld, 0, 0, 16), (jset, 1, 0, 0x00010000), (ret, 0, 0, eperm)]
    prog += [(ret, 0, 0, allow)]
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)


def install_seccomp() -> bool:
    """Load the filter into this process (irrevocable, inherited by its threads); False if it cannot."""
    program = seccomp_program()
    if program is None or not sys.platform.startswith("linux"):
        return False
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    return libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


# ---------------------------------------------------------------- the wire: plain data or handles


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message."""


def encode(x: object, refs: list | None, depth: int = 0) -> object:
    """``x`` as JSON-ready tagged data; objects that are not plain data become ``["r", n]`` handles
    (only where ``refs`` is given: the answer's side)."""
    t = type(x)
    if x is None or t is bool or t is str:
        return x
    if t is int:
        return x if abs(x) < 2**53 else ["i", hex(x)]
    if t is float:
        return x if x == x and x not in (float("inf"), float("-inf")) else ["F", repr(x)]
    if depth < MAX_DEPTH:
        if t is list or t is tuple or t is set or t is frozenset:
            tag = {list: "l", tuple: "t", set: "s", frozenset: "fs"}[t]
            return [tag, [encode(v, refs, depth + 1) for v in x]]
        if t is dict:
            return ["d", [[encode(k, refs, depth + 1), encode(v, refs, depth + 1)] for k, v in x.items()]]
        if t is bytes or t is bytearray:
            return ["b" if t is bytes else "ba", x.hex()]
        if t is complex:
            return ["c", [encode(x.real, refs), encode(x.imag, refs)]]
        if refs is not None:
            module = getattr(t, "__module__", "")
            if module == "numpy" and hasattr(x, "tolist"):  # numpy scalars and arrays as Python data
                return encode(x.tolist(), refs, depth + 1)
            for base in (bool, int, float, str, bytes, list, tuple, dict, set, frozenset):
                if isinstance(x, base):  # a subclass (IntEnum, namedtuple, Counter, ...) as its plain base
                    return encode(base(x), refs, depth + 1)
    if refs is None:
        if isinstance(x, Remote):
            return ["r", x._ref]
        raise TypeError(f"a {t.__name__} cannot be passed to the answer's code")
    if len(refs) >= MAX_REFS:
        raise ProtocolError("too many objects")
    refs.append(x)
    return ["r", len(refs) - 1]


def decode(x: object, resolve) -> object:
    """Tagged data back to fresh built-in objects; ``["r", n]`` through ``resolve(n)``."""
    if x is None or type(x) in (bool, int, float, str):
        return x
    if type(x) is not list or len(x) != 2 or type(x[0]) is not str:
        raise ProtocolError("malformed value")
    tag, v = x
    if tag in ("l", "t", "s", "fs"):
        if type(v) is not list:
            raise ProtocolError("malformed sequence")
        items = [decode(i, resolve) for i in v]
        return {"l": list, "t": tuple, "s": set, "fs": frozenset}[tag](items)
    if tag == "d":
        if type(v) is not list or any(type(p) is not list or len(p) != 2 for p in v):
            raise ProtocolError("malformed dict")
        return {decode(k, resolve): decode(val, resolve) for k, val in v}
    if tag in ("b", "ba") and type(v) is str:
        return (bytes if tag == "b" else bytearray)(bytes.fromhex(v))
    if tag == "c" and type(v) is list and len(v) == 2:
        return complex(float(decode(v[0], resolve)), float(decode(v[1], resolve)))
    if tag == "F" and v in ("nan", "inf", "-inf"):
        return float(v)
    if tag == "i" and type(v) is str:
        return int(v, 16)
    if tag == "r" and type(v) is int:
        return resolve(v)
    if tag == "m" and type(v) is str:
        return resolve(("module", v))
    raise ProtocolError(f"unknown value tag {tag!r}")


class Channel:
    """Newline-delimited JSON messages over a pair of pipe fds."""

    def __init__(self, fd_in: int, fd_out: int) -> None:
        self.rd = os.fdopen(fd_in, "rb")
        self.fd_out = fd_out

    def send(self, msg: dict) -> None:
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd_out, view):]

    def recv(self) -> dict | None:
        """The next message; None at end of file (the other side is gone)."""
        line = self.rd.readline(MAX_MESSAGE + 1)
        if not line:
            return None
        if len(line) > MAX_MESSAGE or not line.endswith(b"\n"):
            raise ProtocolError(f"a message over {MAX_MESSAGE // 2**20} MB")
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise ProtocolError(f"not JSON: {e}") from None
        if type(msg) is not dict:
            raise ProtocolError("not a message")
        return msg


def _exception(e: BaseException) -> list:
    return [type(e).__name__, str(e)[:500]]


# ---------------------------------------------------------------- the answer's side


def answer_main(fd_in: int, fd_out: int) -> None:
    """Run the program from stdin, report its top-level names, then serve the harness's calls."""
    source = sys.stdin.buffer.read().decode("utf-8", "replace")
    channel = Channel(fd_in, fd_out)
    refs: list = []
    ns: dict = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(source, "answer.py", "exec"), ns)
    except BaseException as e:  # SystemExit too: an answer that exits has not finished
        traceback.print_exc()
        sys.stderr.flush()
        channel.send({"error": _exception(e)})
        return
    names = {}
    for name, value in list(ns.items()):
        if name.startswith("__"):
            continue
        if type(value) is type(os):
            names[name] = ["m", value.__name__]
            continue
        try:
            names[name] = encode(value, refs)
        except (ProtocolError, ValueError, RecursionError):
            names[name] = None
        if type(names[name]) is list and len(json.dumps(names[name])) > MAX_NAME_BYTES:
            refs.append(value)  # a big table stays here, behind a handle
            names[name] = ["r", len(refs) - 1]
    channel.send({"names": names})

    def resolve(n):
        if type(n) is not int or not 0 <= n < len(refs):
            raise ProtocolError("unknown handle")
        return refs[n]

    mutable = (list, dict, set, bytearray)
    while True:
        req = channel.recv()
        if req is None or req.get("op") == "bye":
            return
        try:
            target = resolve(req.get("ref"))
            op = req.get("op")
            after = None
            if op == "call":
                args = [decode(a, resolve) for a in req.get("args", [])]
                kwargs = {k: decode(v, resolve) for k, v in req.get("kwargs", {}).items()}
                value = target(*args, **kwargs)
                after = {"args": [[i, encode(a, refs)] for i, a in enumerate(args) if type(a) in mutable],
                         "kwargs": [[k, encode(a, refs)] for k, a in kwargs.items() if type(a) in mutable]}
            elif op == "getattr":
                value = getattr(target, str(req.get("name")))
            elif op == "getitem":
                value = target[decode(req.get("key"), resolve)]
            elif op == "list":
                value = list(target)
            elif op in ("len", "str", "repr", "bool"):
                value = {"len": len, "str": str, "repr": repr, "bool": bool}[op](target)
            else:
                raise ProtocolError(f"unknown operation {op!r}")
            reply = {"ok": encode(value, refs)}
            if after:
                reply["after"] = after
        except BaseException as e:
            reply = {"raise": _exception(e)}
        channel.send(reply)


# ---------------------------------------------------------------- the harness's side


class AnswerGone(BaseException):
    """The answer's process ended or broke the protocol (never caught by the tests' ``except Exception``)."""


class AnswerError(Exception):
    """The answer's code raised an exception that is not a built-in one."""


_rpc = None  # set by harness_main: (op, ref, **fields) -> value


class Remote:
    """A handle on an object in the answer's process: call it, read its attributes, iterate it.
    It equals only itself, so a test cannot be passed by an object that claims to equal anything."""

    __slots__ = ("_ref",)

    def __init__(self, ref: int) -> None:
        object.__setattr__(self, "_ref", ref)

    def __call__(self, *args, **kwargs):
        return _rpc("call", self._ref, args=args, kwargs=kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _rpc("getattr", self._ref, name=name)

    def __getitem__(self, key):
        return _rpc("getitem", self._ref, key=key)

    def __iter__(self):
        return iter(_rpc("list", self._ref))

    def __len__(self) -> int:
        return int(_rpc("len", self._ref))

    def __bool__(self) -> bool:
        return bool(_rpc("bool", self._ref))

    def __str__(self) -> str:
        return str(_rpc("str", self._ref))

    def __repr__(self) -> str:
        return str(_rpc("repr", self._ref))


def _raise_from_answer(name: str, message: str):
    cls = getattr(builtins, str(name), None)
    if isinstance(cls, type) and issubclass(cls, Exception) and cls is not AnswerGone:
        raise cls(message)
    raise AnswerError(f"{name}: {message}")


def _apply_mutations(originals, changes, resolve) -> None:
    for key, value in changes:
        try:
            orig = originals[key]
        except (IndexError, KeyError, TypeError):
            continue
        new = decode(value, resolve)
        if type(orig) is not type(new):
            continue
        if isinstance(orig, (list, bytearray)):
            orig[:] = new
        else:
            orig.clear()
            orig.update(new)


def harness_main(fd_in: int, fd_out: int, fd_verdict: int) -> None:
    """Run the tests from stdin against the answer's process; write the verdict on ``fd_verdict``."""
    global _rpc
    job = json.loads(sys.stdin.buffer.read())
    nonce, tests = str(job["nonce"]), str(job["tests"])
    stub, entry_point = job.get("stub") or "", job.get("entry_point") or ""
    channel = Channel(fd_in, fd_out)
    state = {"gone": ""}

    def verdict(passed: bool, detail: str) -> None:
        passed = passed and not state["gone"]
        detail = state["gone"] or detail
        os.write(fd_verdict, (json.dumps({"nonce": nonce, "passed": passed, "detail": detail[:500]}) + "\n").encode())

    def gone(why: str):
        state["gone"] = state["gone"] or why
        raise AnswerGone(why)

    def receive() -> dict:
        try:
            msg = channel.recv()
        except ProtocolError as e:
            gone(f"the answer's process broke the protocol ({e})")
        if msg is None:
            gone("the answer's process ended before the tests finished (an exit, a kill or a crash)")
        return msg

    def resolve(n):
        if type(n) is tuple:
            raise ProtocolError("a module where a value was expected")
        return Remote(n)

    def resolve_name(n):
        """A top-level name of the answer: a handle, or a standard-library module imported here."""
        if type(n) is not tuple:
            return Remote(n)
        name = str(n[1])
        if name.split(".")[0] not in getattr(sys, "stdlib_module_names", ()):
            return None  # only the standard library is imported on the answer's say-so
        import importlib

        try:
            return importlib.import_module(name)
        except Exception:
            return None

    def rpc(op, ref, **fields):
        if state["gone"]:
            raise AnswerGone(state["gone"])
        args, kwargs = fields.get("args", ()), fields.get("kwargs", {})
        msg = {"op": op, "ref": ref}
        if op == "call":
            msg["args"] = [encode(a, None) for a in args]
            msg["kwargs"] = {str(k): encode(v, None) for k, v in kwargs.items()}
        elif op == "getattr":
            msg["name"] = fields["name"]
        elif op == "getitem":
            msg["key"] = encode(fields["key"], None)
        try:
            channel.send(msg)
        except OSError:
            gone("the answer's process ended before the tests finished (an exit, a kill or a crash)")
        reply = receive()
        if "raise" in reply:
            raised = reply["raise"]
            if type(raised) is not list or len(raised) != 2:
                gone("the answer's process broke the protocol (a malformed exception)")
            _raise_from_answer(str(raised[0]), str(raised[1]))
        try:
            value = decode(reply["ok"], resolve)
            after = reply.get("after") or {}
            _apply_mutations(list(args), after.get("args", []), resolve)
            _apply_mutations(kwargs, after.get("kwargs", []), resolve)
        except (ProtocolError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
            gone(f"the answer's process broke the protocol ({type(e).__name__}: {e})")
        return value

    _rpc = rpc
    try:
        first = receive()
        if "error" in first:
            name, message = first["error"]
            verdict(False, f"the answer raised {name}: {message}")
            return
        ns = {"__name__": "__main__", "__builtins__": builtins}
        trusted = set()
        if stub:  # the question's own helpers come from the question, never from the answer
            try:
                exec(compile(stub, "stub.py", "exec"), ns)
                trusted = {n for n in ns if not n.startswith("__")} - {entry_point}
            except Exception:
                ns = {"__name__": "__main__", "__builtins__": builtins}
        for name, value in dict(first.get("names", {})).items():
            name = str(name)
            if name.startswith("__") or (name != entry_point and (name in trusted or hasattr(builtins, name))):
                continue  # an answer may not redefine what the tests rely on (but its function may be called `sum`)
            value = decode(value, resolve_name)
            if value is not None or type(first["names"].get(name)) is not list:
                ns[name] = value
    except (AnswerGone, ProtocolError, ValueError, TypeError, RecursionError) as e:
        verdict(False, state["gone"] or f"the answer's process broke the protocol ({e})")
        return
    try:
        exec(compile(tests, "tests.py", "exec"), ns)
    except BaseException as e:
        tb = traceback.extract_tb(e.__traceback__)
        lines = tests.splitlines()
        where = next((f" (tests line {f.lineno}: {lines[f.lineno - 1].strip()[:200]})" for f in reversed(tb)
                      if f.filename == "tests.py" and f.lineno and 0 < f.lineno <= len(lines)), "")
        text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        verdict(False, f"{text}{where}")
        return
    try:
        channel.send({"op": "bye"})
    except OSError:
        pass
    verdict(True, "tests passed")


def main(argv: list[str]) -> None:
    """``ROLE MEMORY_MB CPU_S SECCOMP(0/1) FD... -- SITE_DIR...``"""
    role, memory_mb, cpu_s, seccomp = argv[0], int(argv[1]), int(argv[2]), argv[3] == "1"
    fds = [int(a) for a in argv[4:argv.index("--")]]
    import site

    for path in argv[argv.index("--") + 1:]:
        site.addsitedir(path)
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    set_limits(memory_mb, cpu_s)
    if seccomp and not install_seccomp():
        sys.stderr.write("sandbox: the seccomp filter could not be installed\n")
        os._exit(3)
    if role == "answer":
        answer_main(*fds)
    else:
        harness_main(*fds)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
