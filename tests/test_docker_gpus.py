"""GPU leases: all-or-nothing, disjoint across processes and pytest-xdist workers (fake device ids)."""

from __future__ import annotations

import json
import multiprocessing
import textwrap
from pathlib import Path

import pytest

from pytest_isobench.sandbox import gpus


def test_parse_ids() -> None:
    assert gpus.parse_ids("0,1, 3") == ("0", "1", "3")
    assert gpus.parse_ids("none") == () == gpus.parse_ids("")
    assert gpus.parse_ids("GPU-8f1c2a,fake1") == ("GPU-8f1c2a", "fake1")
    for bad in ("0,,1", "0,0", "a b"):
        with pytest.raises(ValueError):
            gpus.parse_ids(bad)


def test_configured_ids_replace_autodetection() -> None:
    try:
        gpus.configure(("fake0", "fake1"))
        assert gpus.usable_ids(lambda: 8) == ("fake0", "fake1")
        gpus.configure(None)
        assert gpus.usable_ids(lambda: 2) == ("0", "1")
    finally:
        gpus.configure(None)


def test_leases_are_disjoint_and_all_or_nothing(tmp_path: Path) -> None:
    ids = ("fake0", "fake1", "fake2")
    first = gpus.lease(ids, 2, tmp_path)
    assert first.ids == ("fake0", "fake1")
    assert gpus.try_lease(ids, 2, tmp_path) is None  # one is free, two are needed: take none
    third = gpus.lease(ids, 1, tmp_path)
    assert third.ids == ("fake2",)
    first.release()
    again = gpus.lease(ids, 2, tmp_path)
    assert again.ids == ("fake0", "fake1")
    again.release()
    third.release()


def test_too_many_gpus_is_an_error_not_a_wait(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="3 GPU"):
        gpus.lease(("fake0", "fake1"), 3, tmp_path)


def test_a_lease_waits_for_gpus_and_times_out(tmp_path: Path) -> None:
    with gpus.lease(("fake0",), 1, tmp_path), pytest.raises(gpus.GpuLeaseTimeout):
        gpus.lease(("fake0",), 1, tmp_path, timeout_s=0.3, poll_s=0.05)
    with gpus.lease(("fake0",), 1, tmp_path, timeout_s=0.3) as got:
        assert got.ids == ("fake0",)


def _hold_and_die(lock_dir: str) -> None:
    gpus.lease(("fake0",), 1, Path(lock_dir))
    raise SystemExit(0)  # exits holding the lease: the kernel drops the lock


def test_a_dead_holder_frees_its_gpus(tmp_path: Path) -> None:
    process = multiprocessing.get_context("spawn").Process(target=_hold_and_die, args=(str(tmp_path),))
    process.start()
    process.join(30)
    with gpus.lease(("fake0",), 1, tmp_path, timeout_s=2) as got:
        assert got.ids == ("fake0",)


INNER = """
import json, os, time
from pathlib import Path

import pytest

from pytest_isobench.sandbox import gpus

IDS = ("fake0", "fake1", "fake2", "fake3")


@pytest.fixture(scope="session", autouse=True)
def both_workers_started():
    # a rendezvous, so that the two workers really lease at the same time
    folder = Path(os.environ["LEASE_DIR"]).parent
    (folder / ("ready-" + os.environ["PYTEST_XDIST_WORKER"])).touch()
    deadline = time.time() + 60
    while len(list(folder.glob("ready-*"))) < 2 and time.time() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("i", range(8))
def test_lease(i):
    with gpus.lease(IDS, 2, Path(os.environ["LEASE_DIR"]), holder=str(i)) as lease:
        start = time.time()
        time.sleep(0.3)
        end = time.time()
    record = {"ids": lease.ids, "start": start, "end": end, "worker": os.environ["PYTEST_XDIST_WORKER"]}
    with open(os.environ["LEASE_LOG"], "a") as log:
        log.write(json.dumps(record) + "\\n")
"""


def test_leases_stay_disjoint_across_xdist_workers(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_inner=textwrap.dedent(INNER))
    log = tmp_path / "leases.jsonl"
    monkeypatch.setenv("LEASE_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("LEASE_LOG", str(log))
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["worker"] for r in records} == {"gw0", "gw1"}
    overlapping = 0
    for i, a in enumerate(records):
        for b in records[i + 1 :]:
            if a["start"] < b["end"] and b["start"] < a["end"]:
                overlapping += 1
                assert not set(a["ids"]) & set(b["ids"]), (a, b)
    assert overlapping > 0  # the two workers really did hold leases at the same time
