"""Host load around benchmark runs: /proc readings, the loaded verdict, and what reaches a run's record."""

from __future__ import annotations

import subprocess
import sys
import time

from pytest_isobench.measure import hostload


def test_sample_before_reads_load_and_other_processes_share() -> None:
    sample = hostload.sample_before(window_s=0.05)
    assert sample["cpus"] >= 1
    assert sample["loadavg_1m"] is None or sample["loadavg_1m"] >= 0
    share = sample["others_cpu_share"]
    assert share is None or 0.0 <= share <= 1.0


def test_a_cpu_burner_shows_up_as_other_processes_load() -> None:
    # A spinning process that is not (yet) reaped counts as "other": it is not the measured benchmark.
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        with hostload.LoadMonitor(interval_s=0.05) as monitor:
            time.sleep(0.5)
        during = monitor.summary()
    finally:
        burner.kill()
        burner.wait()
    cpus = hostload.cpu_count()
    # One spinning process alone is 1/cpus of the machine; whatever else runs only adds to it.
    assert during["others_cpu_share"] is not None
    assert during["others_cpu_share"] >= min(0.2, 0.5 / cpus)
    assert during["loadavg_1m_max"] is None or during["loadavg_1m_max"] >= 0


def test_loaded_names_each_reason() -> None:
    quiet = {"cpus": 4, "loadavg_1m": 0.5, "others_cpu_share": 0.02}
    assert hostload.loaded(quiet, {"others_cpu_share": 0.05}) is None
    busy = {"cpus": 2, "loadavg_1m": 6.0, "others_cpu_share": 0.9}
    why = hostload.loaded(busy, {"others_cpu_share": 0.8})
    assert why is not None
    assert "other processes used 90 % of the CPUs before the run" in why
    assert "80 % of the CPUs during the run" in why and "load average 6 on 2 CPU(s)" in why
    gpus = {**quiet, "gpus": [{"index": 0, "processes": 0}, {"index": 1, "processes": 2}]}
    assert hostload.loaded(gpus, None, gpus="1") == "other processes on GPU(s) [1]"
    assert hostload.loaded(gpus, None, gpus="0") is None  # busy GPU 1 is not this run's


def test_visible_gpus_follow_the_runs_environment() -> None:
    assert hostload.visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == "2,3"
    assert hostload.visible_gpus({"NVIDIA_VISIBLE_DEVICES": "1"}) == "1"
