"""One writer at a time: save conflicts, temporaries of crashed saves, loads across a save, and the
feedback log's (segment, seq) keys (restores, old logs, a call id riding along)."""

from __future__ import annotations

import json
import os
import shutil
import warnings

import numpy as np
import pytest
from conftest import CARDS, DIM, toy_embedder, toy_history

import scope_shared.history.store as store
from scope_shared import History, Outcome, Router
from scope_shared.errors import HistoryStoreError
from scope_shared.atomic import sweep_temp_files, temp_target
from scope_shared.history.feedback_log import FeedbackLog, _frame


def _add(h: History, text: str) -> None:
    h.add(text, toy_embedder().embed_one(text), [Outcome(model="cheap", correct=1.0)])


def test_a_stale_history_cannot_overwrite_a_newer_save(tmp_path):
    toy_history(per_topic=2).save(tmp_path / "h")
    a, b = History.load(tmp_path / "h"), History.load(tmp_path / "h")
    _add(a, "math from writer a")
    a.save(tmp_path / "h")
    _add(b, "math from writer b")
    before = {p.name: p.read_bytes() for p in (tmp_path / "h").iterdir()}
    with pytest.raises(HistoryStoreError, match="saved by another writer"):
        b.save(tmp_path / "h")
    assert {p.name: p.read_bytes() for p in (tmp_path / "h").iterdir()} == before  # nothing written
    assert "math from writer a" in History.load(tmp_path / "h")
    a.save(tmp_path / "h")  # the writer whose save is on disk goes on saving
    _add(a, "math from writer a, later")
    a.save(tmp_path / "h")
    fresh = toy_history(per_topic=1)  # a history that never came from the store replaces it
    fresh.save(tmp_path / "h")
    assert len(History.load(tmp_path / "h")) == len(fresh)


def test_writers_that_log_their_feedback_lose_nothing_on_a_conflict(tmp_path):
    """The documented recovery: on a conflict, load again with the log attached, then save."""
    toy_history(per_topic=2).save(tmp_path / "h")
    log = tmp_path / "feedback.log"
    ra = Router(CARDS, History.load(tmp_path / "h"), embedder=toy_embedder(), feedback_log=log)
    rb = Router(CARDS, History.load(tmp_path / "h"), embedder=toy_embedder(), feedback_log=log)
    ra.record_outcome("trivia from a", "cheap", 1.0)
    rb.record_outcome("trivia from b", "mid", 0.0)
    ra.history.save(tmp_path / "h")
    with pytest.raises(HistoryStoreError):
        rb.history.save(tmp_path / "h")
    rb.history.detach_log()
    again = History.load(tmp_path / "h")
    again.attach_log(log)
    again.save(tmp_path / "h")
    final = History.load(tmp_path / "h")
    report = final.attach_log(log)
    assert report.applied == 0 and "trivia from a" in final and "trivia from b" in final
    assert sum(r.outcome.source == "feedback" for r in final.records) == 2


def test_a_save_sweeps_temporaries_of_crashed_saves_only(tmp_path):
    h = toy_history(per_topic=2)
    h.save(tmp_path / "h")
    crashed = [".questions-2.jsonl.k3j4l5m6.tmp", ".manifest.json.a1b2c3d4.tmp", ".embeddings-7.npy.zz_9yy8x.tmp"]
    foreign = [".notes.txt.abcdef12.tmp", "keep-me.tmp", ".hidden"]
    for name in crashed + foreign:
        (tmp_path / "h" / name).write_bytes(b"x" * 100)
    assert temp_target(crashed[0]) == "questions-2.jsonl" and temp_target("keep-me.tmp") is None
    h.save(tmp_path / "h")
    names = {p.name for p in (tmp_path / "h").iterdir()}
    assert not names & set(crashed) and set(foreign) <= names
    assert len(History.load(tmp_path / "h")) == len(h)


def test_sweep_spares_young_temporaries_when_asked(tmp_path):
    (tmp_path / ".a.json.abcdefgh.tmp").write_text("x")
    assert sweep_temp_files(tmp_path, older_than_s=3600) == 0
    os.utime(tmp_path / ".a.json.abcdefgh.tmp", (0, 0))
    assert sweep_temp_files(tmp_path, older_than_s=3600) == 1


def test_a_broken_generation_does_not_block_the_next_save(tmp_path):
    toy_history(per_topic=2).save(tmp_path / "h")
    m = json.loads((tmp_path / "h" / "manifest.json").read_text())
    (tmp_path / "h" / "manifest.json").write_text(json.dumps({**m, "generation": "2"}))
    with pytest.raises(HistoryStoreError, match="generation"):
        History.load(tmp_path / "h")
    h = toy_history(per_topic=3)
    h.save(tmp_path / "h")
    assert len(History.load(tmp_path / "h")) == len(h)
    assert json.loads((tmp_path / "h" / "manifest.json").read_text())["generation"] == 2


def test_a_load_that_races_a_save_reads_the_new_generation(tmp_path, monkeypatch):
    """Between reading the manifest and a data file, another writer replaces the store: the load
    starts again (under the lock) instead of failing."""
    toy_history(per_topic=2).save(tmp_path / "h")
    newer = toy_history(per_topic=3)
    real = store.read_file
    raced = []

    def racing(folder, name, *a, **k):
        if name.startswith("questions-") and not raced:
            raced.append(name)
            newer.save(tmp_path / "h")  # deletes the generation this load is reading
        return real(folder, name, *a, **k)

    monkeypatch.setattr(store, "read_file", racing)
    assert len(History.load(tmp_path / "h")) == len(newer) and raced


def test_a_truly_missing_file_is_still_an_error(tmp_path):
    toy_history(per_topic=2).save(tmp_path / "h")
    m = json.loads((tmp_path / "h" / "manifest.json").read_text())
    (tmp_path / "h" / m["files"]["cards"]).unlink()
    with pytest.raises(HistoryStoreError, match="corrupt: cards-1.json is missing"):
        History.load(tmp_path / "h")


def test_records_carry_a_segment_key_and_an_optional_call_id(tmp_path):
    log = FeedbackLog(tmp_path / "f.log", DIM)
    k1 = log.append("math one", np.ones(DIM), [Outcome(model="m", correct=1.0)], call_id="call-7")
    k2 = log.append("math two", np.ones(DIM), [Outcome(model="m", correct=0.0)])
    assert k1 == (log.segment, 1) and k2 == (log.segment, 2) and log.segment.startswith(log.log_id + ":")
    recs = [r for _, _, r in log.records()]
    assert [r.call_id for r in recs] == ["call-7", None] and [r.seq for r in recs] == [1, 2]
    other = FeedbackLog(tmp_path / "f.log", DIM)  # a second writer (another process, or a restart)
    assert other.segment != log.segment and other.log_id == log.log_id


def test_replay_skips_by_key_not_by_offset(tmp_path):
    """A history that folded records in, saved, then meets a log restored from a backup and
    written again: the new records replay (their offsets are below the old end), old ones do not."""
    log = tmp_path / "f.log"
    h = History(DIM)
    h.attach_log(log)
    for i in range(4):
        _add(h, f"math before {i}")
    backup = log.read_bytes()
    for i in range(4):
        _add(h, f"math after {i}")
    h.detach_log()
    log.write_bytes(backup)  # the restore
    w = History(DIM)
    w.attach_log(log)
    _add(w, "math after the restore")
    w.detach_log()
    replay = History(DIM)
    replay.feedback_applied = dict(h.feedback_applied)
    report = replay.attach_log(log)
    assert report.applied == 1 and report.already_applied == 4 and "math after the restore" in replay


def test_records_of_an_older_log_format_still_replay_by_offset(tmp_path):
    """Logs written before segments existed: their records have no key and are matched by the
    byte offset the old manifests stored under the log id."""
    log = tmp_path / "old.log"
    FeedbackLog(log, DIM)  # header only
    log_id = json.loads(log.read_bytes().split(b" ", 2)[2].split(b"\n")[0])["log_id"]
    emb = __import__("base64").b64encode(np.ones(DIM, "<f4").tobytes()).decode()
    lines = [_frame(json.dumps({"text": f"math old {i}", "emb": emb, "benchmark": None, "outcomes": [{"model": "m", "correct": 1.0}]}).encode()) for i in range(3)]
    with open(log, "ab") as f:
        f.write(b"".join(lines))
    second_ends = log.stat().st_size - len(lines[2])
    h = History(DIM)
    h.feedback_applied = {log_id: second_ends}  # the old manifests' mark: two records folded in
    report = h.attach_log(log)
    assert report.applied == 1 and "math old 2" in h and "math old 0" not in h
    h.save(tmp_path / "s")
    again = History.load(tmp_path / "s")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert again.attach_log(log).applied == 0


def test_concurrent_log_creation_writes_one_header(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as ex:
        ids = set(ex.map(lambda _: FeedbackLog(tmp_path / "new.log", DIM).log_id, range(16)))
    assert len(ids) == 1 and (tmp_path / "new.log").read_bytes().count(b"SCOPE-FEEDBACK-LOG") == 1


def test_a_read_only_store_can_still_be_loaded(tmp_path):
    toy_history(per_topic=2).save(tmp_path / "h")
    shutil.copytree(tmp_path / "h", tmp_path / "ro")
    os.chmod(tmp_path / "ro", 0o555)
    try:
        assert len(History.load(tmp_path / "ro")) == 6
    finally:
        os.chmod(tmp_path / "ro", 0o755)
