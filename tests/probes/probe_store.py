"""Untrusted store files: a pristine store, mutated one way per case, then loaded.

A load must raise `HistoryStoreError` (or, for a change the format does not care about, load the
same history), never read outside the store, never write, never allocate what the files do not
hold, never hand faiss a spec it crashes on. A store whose manifest is broken must not block the
next save. Cases rewrite the checksum in the manifest after a mutation, so the checks behind it run.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from conftest import toy_history
from probe_common import Case, Verdict, fail, ok, raised

from scope_shared import History
from scope_shared.errors import HistoryStoreError

GROUP = "store"
CRASHING_SPECS = ("RR0,Flat", "HNSW1", "IVF1,PQ1x0", "PQ1x0", "PQ4x0", "HNSW1,SQ8", "IVF4,PQ8x0")
OTHER_BAD_SPECS: tuple[Any, ...] = (
    "OPQ4,IVF4,PQ4", "PCA0,Flat", "NoSuch", "IVF{0},Flat", 5, [], {"spec": "ivf-sq8", "nlist": 0},
    {"spec": "flat", "evil": 1}, {"spec": 5}, {"spec": "ivf-sq8", "nlist": 2**40}, {"spec": "flat", "nprobe": "x"},
)


def pristine(tmp: Path) -> Path:
    d = tmp / "h"
    toy_history(per_topic=4).save(d)
    return d


def listing(d: Path) -> dict[str, bytes]:
    return {p.name: (p.read_bytes() if p.is_file() and not p.is_symlink() else b"<not a file>") for p in sorted(d.iterdir())}


def manifest(d: Path) -> dict[str, Any]:
    return json.loads((d / "manifest.json").read_text())


def write_manifest(d: Path, m: dict[str, Any]) -> None:
    (d / "manifest.json").write_text(json.dumps(m))


def replace_file(d: Path, key: str, data: bytes) -> None:
    """Put ``data`` in the store's ``key`` file and make the manifest's checksum agree."""
    m = manifest(d)
    (d / m["files"][key]).write_bytes(data)
    m["sha256"][key] = hashlib.sha256(data).hexdigest()
    write_manifest(d, m)


def npy_bytes(header: dict[str, Any], payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


PRISTINE = (12, 36)  # questions, outcomes of `pristine`


def judge_load(d: Path, equivalent_ok: bool = True, then_save: bool = True) -> Verdict:
    """The load must fail with `HistoryStoreError` (or, if ``equivalent_ok``, load the pristine
    history, which must then save cleanly) and write nothing; then a save into the directory must
    work (a broken store must not block the next save)."""
    before = listing(d)
    try:
        h = History.load(d)
    except HistoryStoreError:
        verdict = ok("HistoryStoreError")
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        return fail(f"load raised {raised(exc)}")
    else:
        if not equivalent_ok or (len(h), h.n_records) != PRISTINE:
            return fail(f"loaded a tampered store ({len(h)} questions)")
        try:  # what was loaded must work and be writable again (no poisoned text)
            h.search(h.embeddings[:2], 3)
            h.save(d.parent / "resaved")
        except Exception as exc:  # noqa: BLE001
            return fail(f"loaded, but the history cannot be saved: {raised(exc)}")
        verdict = ok("loaded an equivalent store")
    if listing(d) != before:
        return fail("load wrote to the store")
    if then_save:
        try:
            fresh = toy_history(per_topic=2)
            fresh.save(d)
            if len(History.load(d)) != len(fresh):
                return fail("the next save did not replace the broken store")
        except Exception as exc:  # noqa: BLE001
            return fail(f"the broken store blocks the next save: {raised(exc)}")
    return verdict


def _manifest_case(edit: Callable[[dict[str, Any], Path], None]) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        d = pristine(tmp)
        m = manifest(d)
        edit(m, d)
        write_manifest(d, m)
        return judge_load(d)
    return run


def _file_case(key: str, make: Callable[[Path, dict[str, Any]], bytes]) -> Callable[[Path], Verdict]:
    def run(tmp: Path) -> Verdict:
        d = pristine(tmp)
        replace_file(d, key, make(d, manifest(d)))
        return judge_load(d)
    return run


def _outside_name(how: str) -> Callable[[Path], Verdict]:
    """The manifest points a data file outside the store; a copy of the real file waits there."""
    def run(tmp: Path) -> Verdict:
        d = pristine(tmp)
        m = manifest(d)
        real = d / m["files"]["questions"]
        outside = tmp / "outside.jsonl"
        shutil.copy(real, outside)
        real.unlink()
        names = {"dotdot": "../outside.jsonl", "absolute": str(outside), "subdir": "sub/../../outside.jsonl"}
        if how == "symlink":
            real.symlink_to(outside)
        else:
            m["files"]["questions"] = names[how]
            write_manifest(d, m)
        return judge_load(d, equivalent_ok=False)
    return run


def _zip_member(name: str, data: bytes, compress: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compress) as z:
        z.writestr(name, data)
    return buf.getvalue()


def _npz_with(d: Path, m: dict[str, Any], col: str, member: bytes, compress: int = zipfile.ZIP_STORED) -> bytes:
    """The real outcome archive with one column replaced by ``member``."""
    src = zipfile.ZipFile(io.BytesIO((d / m["files"]["outcomes"]).read_bytes()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for info in src.infolist():
            if info.filename == f"{col}.npy":
                z.writestr(zipfile.ZipInfo(info.filename), member, compress_type=compress)
            else:
                z.writestr(info, src.read(info))
    return buf.getvalue()


def _bomb_member(n: int) -> bytes:
    """An npy member declaring ``n`` float64 values (tiny when deflated: zeros compress ~1000x)."""
    return npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (n,)}, bytes(1 << 20))


def _poisoned_question(d: Path, m: dict[str, Any]) -> bytes:
    lines = (d / m["files"]["questions"]).read_bytes().split(b"\n")
    lines[0] = b'{"text": "math \\ud800 question", "benchmark": "math"}'
    return b"\n".join(lines)


def _deep_manifest(tmp: Path) -> Verdict:
    d = pristine(tmp)
    (d / "manifest.json").write_text('{"format": "scope-history", "version": 2, "index": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return judge_load(d)


def _huge_int_manifest(tmp: Path) -> Verdict:
    d = pristine(tmp)
    text = (d / "manifest.json").read_text()
    m = manifest(d)
    (d / "manifest.json").write_text(text.replace(f'"dim": {m["dim"]}', '"dim": ' + "9" * 5000))
    return judge_load(d)


def _data_file_is_a_directory(tmp: Path) -> Verdict:
    d = pristine(tmp)
    m = manifest(d)
    (d / m["files"]["cards"]).unlink()
    (d / m["files"]["cards"]).mkdir()
    return judge_load(d)


def _poisoned_log(tmp: Path) -> Verdict:
    """A feedback log holding a record with a lone surrogate (what older versions let in): the
    record is skipped on replay, the rest applies, and the history still saves."""
    import base64
    import warnings
    import zlib

    from conftest import DIM

    log = tmp / "feedback.log"
    h = History(DIM)
    h.attach_log(log)
    h.add("math question fine", np.eye(DIM, dtype=np.float32)[0], [])
    h.detach_log()
    payload = json.dumps({"text": "math \ud800", "emb": base64.b64encode(np.eye(DIM, dtype="<f4")[1].tobytes()).decode(),
                          "benchmark": None, "outcomes": [{"model": "m", "correct": 1.0}]}).encode()
    with open(log, "ab") as f:
        f.write(b"%08x %08x " % (len(payload), zlib.crc32(payload)) + payload + b"\n")
    fresh = History(DIM)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fresh.attach_log(log)
        fresh.save(tmp / "store")
    except Exception as exc:  # noqa: BLE001
        return fail(f"replaying the log poisons the history: {raised(exc)}")
    return ok() if "math question fine" in fresh else fail("the intact record was not applied")


def _cases() -> list[tuple[str, Callable[[Path], Verdict]]]:
    rows: list[tuple[str, Callable[[Path], Verdict]]] = []
    for spec in (*CRASHING_SPECS, *OTHER_BAD_SPECS):
        rows.append((f"index={spec!r}", _manifest_case(lambda m, d, s=spec: m.__setitem__("index", s))))
    for spec in CRASHING_SPECS:  # with a small train_size, loading 12 questions trains the index
        rows.append((f"index.spec={spec!r}, trained on load",
                     _manifest_case(lambda m, d, s=spec: m["index"].update(spec=s, nlist=1, train_size=8))))
    for how in ("dotdot", "absolute", "subdir", "symlink"):
        rows.append((f"questions file {how} outside the store", _outside_name(how)))
    for key in ("embeddings", "outcomes", "cards"):
        rows.append((f"{key} file name '/etc/passwd'", _manifest_case(lambda m, d, k=key: m["files"].__setitem__(k, "/etc/passwd"))))
        rows.append((f"{key} file name '.hidden'", _manifest_case(lambda m, d, k=key: m["files"].__setitem__(k, ".hidden"))))
    for gen in ("2", 2.5, None, -1, True, [], 10**30):
        rows.append((f"generation={gen!r}", _manifest_case(lambda m, d, g=gen: m.__setitem__("generation", g))))
    big = {"huge npy shape (12e9 x 8)": (12 * 10**9, 8), "huge npy shape 1-d": (10**11,), "huge npy shape 3-d": (10**6, 10**6, 8)}
    for name, shape in big.items():
        rows.append((f"embeddings {name}", _file_case("embeddings", lambda d, m, s=shape: npy_bytes({"descr": "<f4", "fortran_order": False, "shape": s}, b"\0" * 64))))
    rows += [
        ("embeddings object dtype", _file_case("embeddings", lambda d, m: npy_bytes({"descr": "|O", "fortran_order": False, "shape": (12, 8)}, b"\0" * 768))),
        ("embeddings header garbage", _file_case("embeddings", lambda d, m: b"\x93NUMPY\x01\x00\x10\x00{'descr': os.system}  \n")),
        ("embeddings truncated payload", _file_case("embeddings", lambda d, m: npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (12, 8)}, b"\0" * 100))),
        ("outcomes not a zip", _file_case("outcomes", lambda d, m: b"PK\x03\x04 this is not a zip archive")),
        ("outcomes random bytes", _file_case("outcomes", lambda d, m: bytes(range(256)) * 4)),
        ("outcomes zip bomb (deflated member declaring 400 GB)", _file_case("outcomes", lambda d, m: _npz_with(d, m, "correct", _bomb_member(5 * 10**10), zipfile.ZIP_DEFLATED))),
        ("outcomes stored member declaring 400 GB", _file_case("outcomes", lambda d, m: _npz_with(d, m, "correct", npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (5 * 10**10,)})))),
        ("outcomes member object dtype", _file_case("outcomes", lambda d, m: _npz_with(d, m, "q", npy_bytes({"descr": "|O", "fortran_order": False, "shape": (m["n_outcomes"],)}, b"\0" * 8 * m["n_outcomes"])))),
        ("outcomes only one member", _file_case("outcomes", lambda d, m: _zip_member("q.npy", npy_bytes({"descr": "<i4", "fortran_order": False, "shape": (1,)}, b"\0" * 4)))),
        ("question text with a lone surrogate", _file_case("questions", _poisoned_question)),
        ("questions not UTF-8", _file_case("questions", lambda d, m: b"\xff\xfe\x00garbage\n")),
        ("questions line not an object", _file_case("questions", lambda d, m: b"[1, 2]\n" * 12)),
        ("cards not a list", _file_case("cards", lambda d, m: b"5")),
        ("cards entry not an object", _file_case("cards", lambda d, m: b"[[1]]")),
        ("cards entry bad price", _file_case("cards", lambda d, m: b'[{"name": "x", "input_price": -1, "output_price": 1}]')),
        ("manifest nested 100,000 deep", _deep_manifest),
        ("manifest 5,000-digit dim", _huge_int_manifest),
        ("dim=10**9", _manifest_case(lambda m, d: m.__setitem__("dim", 10**9))),
        ("dim='8'", _manifest_case(lambda m, d: m.__setitem__("dim", "8"))),
        ("n_outcomes wrong", _manifest_case(lambda m, d: m.__setitem__("n_outcomes", m["n_outcomes"] + 1))),
        ("outcome_models with a surrogate", _manifest_case(lambda m, d: m["outcome_models"].__setitem__(0, "\ud800"))),
        ("outcome_models duplicate", _manifest_case(lambda m, d: m.__setitem__("outcome_models", [m["outcome_models"][0]] * 3))),
        ("outcome_models not a list", _manifest_case(lambda m, d: m.__setitem__("outcome_models", "cheap"))),
        ("feedback_applied strings", _manifest_case(lambda m, d: m.__setitem__("feedback_applied", {"x": "y"}))),
        ("files not a mapping", _manifest_case(lambda m, d: m.__setitem__("files", ["questions-1.jsonl"]))),
        ("sha256 missing", _manifest_case(lambda m, d: m.pop("sha256"))),
        ("embedder not a string", _manifest_case(lambda m, d: m.__setitem__("embedder", {"x": 1}))),
        ("data file is a directory", _data_file_is_a_directory),
        ("feedback log record with a lone surrogate", _poisoned_log),
    ]
    return rows


def cases() -> list[Case]:
    return [Case(GROUP, name, run) for name, run in _cases()]
