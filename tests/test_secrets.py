"""Secrets stay secret: what counts as one, redaction of text, files and log records, the local
agent's allow-listed environment, and the canary run on the local backend."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest

from canary import CANARY_VARS, Catch, canaries, canary_args, canary_project, catch, check_canary_run  # noqa: F401
from fake_llm_server import FakeLLM, fake_llm_fixture  # noqa: F401
from pytest_isobench import secrets as redaction
from pytest_isobench.pipeline import run_job
from pytest_isobench.sandbox.base import SandboxSpec
from pytest_isobench.sandbox.local import LocalSandbox
from pytest_isobench.sandbox.repos import materialise
from support import load, write_source_task
from test_local_sandbox import settings
from test_pipeline import job

KEY = "sk-ant-canary-0123456789abcdef"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("ANTHROPIC_API_KEY", True),
        ("HF_TOKEN", True),
        ("GITHUB_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("DB_PASSWORD", True),
        ("CLIENT_SECRET", True),
        ("OPENAI_ADMIN_KEY", True),
        ("PATH", False),
        ("TOKENIZERS_PARALLELISM", False),
        ("ISOBENCH_PROCESS_TOKEN", False),  # the harness's process-tree token, not a secret
        ("HF_HOME", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert redaction.is_secret_name(name) is secret


def test_configured_names_are_secrets_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORP_MATERIAL", "material-value-1234")
    assert "material-value-1234" in redaction.redact("x material-value-1234 y")
    redaction.configure(["CORP_MATERIAL"])
    try:
        assert redaction.redact("x material-value-1234 y") == "x [redacted CORP_MATERIAL] y"
    finally:
        redaction.configure([])


def test_redact_text_and_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_canaryvalue42")
    monkeypatch.setenv("SOME_API_KEY", "shortk")  # six characters: still a secret
    text = "token hf_canaryvalue42 and shortk"
    assert redaction.redact(text) == "token [redacted HF_TOKEN] and [redacted SOME_API_KEY]"
    data = {"a": ["hf_canaryvalue42", 3, None], "hf_canaryvalue42": {"k": ("shortk",)}}
    assert redaction.redact_data(data) == {
        "a": ["[redacted HF_TOKEN]", 3, None],
        "[redacted HF_TOKEN]": {"k": ("[redacted SOME_API_KEY]",)},
    }
    assert redaction.contains_secret("x hf_canaryvalue42") == ["HF_TOKEN"]


def test_redact_file_streams_and_catches_keys_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setattr(redaction, "_CHUNK", 64)  # a key cut by every chunk boundary in turn
    lines = [f"line {i} {'x' * (i % 70)} {KEY} \xe9\r\n" for i in range(200)]
    log = tmp_path / "agent.stdout.txt"
    log.write_bytes("".join(lines).encode() + b"\xff\xfe raw bytes\n")  # not UTF-8: kept as is
    os.chmod(log, 0o640)
    assert redaction.redact_file(log) is True
    data = log.read_bytes()
    assert KEY.encode() not in data
    assert data.count(b"[redacted OPENAI_API_KEY]") == 200
    assert data.endswith(b"\xff\xfe raw bytes\n") and b"\xc3\xa9\r\n" in data
    assert log.stat().st_mode & 0o777 == 0o640
    assert redaction.redact_file(log) is False  # nothing left: the file is not rewritten
    assert not list(tmp_path.glob(".*tmp"))


def test_redact_tree_skips_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    outside = tmp_path / "outside.txt"
    outside.write_text(KEY)
    (tmp_path / "art" / "bench").mkdir(parents=True)
    (tmp_path / "art" / "bench" / "stdout.txt").write_text(f"key={KEY}\n")
    (tmp_path / "art" / "link").symlink_to(outside)
    assert redaction.redact_tree(tmp_path / "art") == [tmp_path / "art" / "bench" / "stdout.txt"]
    assert outside.read_text() == KEY  # a link the agent planted is not followed


def test_log_records_are_redacted_and_sdk_loggers_quiet(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("HTTPX_LOG", raising=False)
    sdk = logging.getLogger("httpx")
    monkeypatch.setattr(sdk, "level", logging.NOTSET)
    monkeypatch.setattr(redaction, "_state", {})  # as in a fresh process (this run installed it already)
    monkeypatch.setattr(logging, "_logRecordFactory", logging.LogRecord)
    redaction.install_logging()
    try:
        assert sdk.level == logging.WARNING
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("somelib").debug("key %s", KEY)
            try:
                raise ValueError(f"bad key {KEY}")
            except ValueError:
                logging.getLogger("somelib").exception("failed")
        assert KEY not in caplog.text and "[redacted ANTHROPIC_API_KEY]" in caplog.text
    finally:
        redaction.uninstall_logging()
    assert sdk.level == logging.NOTSET
    assert logging.getLogRecordFactory() is logging.LogRecord


def test_local_agent_gets_an_allow_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("MODEL_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("ISOBENCH_HINT", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.setenv("UNRELATED", "1")
    task_file = write_source_task(tmp_path / "tasks", "toy-env")
    task = load(task_file)
    repo = materialise(task, task_file, tmp_path / "cache" / "repos")
    chosen = replace(settings(tmp_path), agent_env=("MODEL_ENDPOINT", "ANTHROPIC_API_KEY"))
    for spec_settings, key_given in ((settings(tmp_path), False), (chosen, True)):
        box = LocalSandbox(SandboxSpec(task, task_file, repo, tmp_path / "ws", spec_settings))
        agent = box.environment()
        assert {"PATH", "LC_ALL", "ISOBENCH_HINT", "CUDA_VISIBLE_DEVICES"} <= set(agent)
        assert "UNRELATED" not in agent
        assert ("ANTHROPIC_API_KEY" in agent) is key_given
        assert ("MODEL_ENDPOINT" in agent) is key_given
        bench = box.environment(tmp_path)
        assert "UNRELATED" in bench and "ANTHROPIC_API_KEY" not in bench  # benchmarks: no secrets


def test_a_local_agent_that_dumps_env_leaves_no_key_and_is_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    toy = write_source_task(tmp_path / "tasks", "toy-sleep", timeout_s=10)
    # What the environment does not give, a local agent can still read (same user): it is redacted.
    spec = f"command:env; echo {KEY} > stolen.txt; echo {KEY} >&2"
    outcome = run_job(job(tmp_path, toy, spec, rounds=1, warmup=0))
    art = Path(outcome.artifacts)
    assert KEY not in (art / "agent.stdout.txt").read_text()  # not in its environment
    assert "+[redacted OPENAI_API_KEY]" in (art / "patch.diff").read_text()
    assert "[redacted OPENAI_API_KEY]" in (art / "agent.stderr.txt").read_text()
    assert outcome.patch["embeds_secret"] == ["OPENAI_API_KEY"]
    assert outcome.hard != "failed"  # the agent's own patch was measured
    for path in [*art.rglob("*"), art.parents[1] / "outcomes.jsonl"]:
        assert not path.is_file() or KEY.encode() not in path.read_bytes(), path


def test_agent_env_and_redact_options(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nisobench_redact = A_NAME B_NAME\n")
    pytester.makepyfile(
        test_opts="""
        def test_settings(isobench_settings):
            assert isobench_settings.agent_env == ("X_KEY", "Y")
            assert isobench_settings.redact == ("A_NAME", "B_NAME")
            assert isobench_settings.measure_network == "none"
        """
    )
    result = pytester.runpytest("--isobench-agent-env=X_KEY", "--isobench-agent-env", "Y")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("--isobench-agent-env=not-a-name")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--isobench-agent-env: 'not-a-name' is not an environment variable name*"])


@pytest.mark.parametrize("dist", [[], ["-n", "2"]], ids=["single", "xdist2"])
def test_canary_run_local(
    dist: list[str],
    pytester: pytest.Pytester,
    canaries: dict[str, str],  # noqa: F811
    catch: Catch,  # noqa: F811
    fake_llm: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    canary_project(pytester, catch, fake_llm, monkeypatch)
    result = pytester.runpytest_subprocess(*canary_args(pytester, catch), *dist)
    result.assert_outcomes(failed=1)  # the agent made nothing faster
    outcome = check_canary_run(pytester, result, canaries, catch, fake_llm)
    # Locally the agent reads its ancestors' environments (same user): the keys reached its patch,
    # and were redacted from the stored copy, the judge prompt and every log; the outcome says so.
    assert set(outcome["patch"]["embeds_secret"]) == set(CANARY_VARS)
    assert "[redacted ANTHROPIC_API_KEY]" in (Path(outcome["artifacts"]) / "patch.diff").read_text()
    sent = [json.loads(body) for body in catch.bodies]
    assert {body["from"] for body in sent} == {"agent", "benchmark"}  # both attempts got through
