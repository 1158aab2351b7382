"""A fake OpenAI-compatible completions server on 127.0.0.1 for the correctness checks' tests.

It answers two kinds of request on ``POST /v1/completions``:

- GSM8K-format prompts (lm-eval's ``Question: ...\\nAnswer:``, after the few-shot examples): the answer
  of the last question, looked up in a JSONL set, written as ``... #### N``. With ``wrong_every=4``
  every fourth item of the set (by line) gets a wrong number.
- Any other prompt: a greedy generation with logprobs. The tokens are a deterministic function of the
  prompt; each position's top-k lists the emitted token first, then runners-up. ``change_at=i`` swaps
  token ``i`` for one outside every top-k (a wrong answer); ``near_tie_at=i`` emits token ``i``'s
  runner-up, whose logprob is within 0.01 of the best on both sides (what numerics may flip).

Runnable on its own, for a task's ``benchmark.server``::

    python tests/fake_completions_server.py --port 8000 [--gsm8k FILE] [--wrong-every 4] [--change-at 3]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import random
import re
import sys
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

# A task's server.py may run this file by path (runpy), with its own folder first on sys.path: the
# shared server base sits next to this file.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.append(HERE)

from http_fake import HttpFake  # noqa: E402

MODEL = "fake-model"
QUESTION = re.compile(r"Question: (.*?)\nAnswer:", re.S)


@dataclass
class Behaviour:
    """How the server answers: a GSM8K answer key, and where its greedy generations go wrong."""

    answers: dict[str, str]  # question -> final answer (the number after ####)
    wrong: frozenset[str] = frozenset()  # questions answered wrongly
    change_at: int | None = None
    near_tie_at: int | None = None


def load_gsm8k(path: Path, wrong_every: int = 0) -> Behaviour:
    """The answer key of a GSM8K-format JSONL file (``question``, ``answer`` ending ``#### N``)."""
    answers, wrong = {}, set()
    for index, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        item = json.loads(line)
        question = item["question"].strip()
        answers[question] = item["answer"].rsplit("####", 1)[1].strip()
        if wrong_every and index % wrong_every == wrong_every - 1:
            wrong.add(question)
    return Behaviour(answers, frozenset(wrong))


def write_gsm8k(folder: Path, *, train: int = 8, test: int = 40, seed: int = 0) -> Path:
    """A small GSM8K-format set (``train.jsonl``, ``test.jsonl``) and an lm-eval task YAML over it whose
    task is ``gsm8k`` (the built-in task's prompt, filters and metric, on these files): the folder to
    give as ``--isobench-lm-eval-data``."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("test", test)):
        lines = []
        for number in range(count):
            apples, more = rng.randint(2, 99), rng.randint(2, 99)
            question = f"Ann has {apples} apples and buys {more} more ({split} {number}). How many now?"
            answer = f"She has {apples} + {more} = {apples + more} apples.\n#### {apples + more}"
            lines.append(json.dumps({"question": question, "answer": answer}) + "\n")
        (folder / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")
    spec = importlib.util.find_spec("lm_eval")
    assert spec is not None and spec.submodule_search_locations, "lm-eval is not installed"
    builtin = Path(next(iter(spec.submodule_search_locations))) / "tasks" / "gsm8k" / "gsm8k.yaml"
    (folder / "gsm8k.yaml").write_text(
        f"include: {builtin}\n"
        "task: gsm8k\n"
        "dataset_path: json\n"
        "dataset_name: null\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        f"    train: {folder / 'train.jsonl'}\n"
        f"    test: {folder / 'test.jsonl'}\n",
        encoding="utf-8",
    )
    return folder


def word(seed: str, index: int, rank: int) -> str:
    """The rank-th candidate token at position ``index`` of the generation for ``seed``."""
    digest = hashlib.sha256(f"{seed}|{index}|{rank}".encode()).hexdigest()
    return " w" + digest[:6]


def greedy(behaviour: Behaviour, prompt: str, max_tokens: int, top_k: int) -> dict[str, Any]:
    """Tokens, per-token logprobs and top-k alternatives of a deterministic greedy generation."""
    tokens, token_logprobs, top = [], [], []
    for index in range(max_tokens):
        candidates = [word(prompt, index, rank) for rank in range(max(top_k, 2))]
        logprobs = [-0.1 - 1.5 * rank for rank in range(len(candidates))]
        chosen = candidates[0]
        if behaviour.near_tie_at == index:
            logprobs[0], logprobs[1] = -0.690, -0.695
            candidates[0], candidates[1] = candidates[1], candidates[0]
            chosen = candidates[0]
        elif behaviour.change_at == index:
            chosen = " wrong"
            candidates[0] = chosen
        tokens.append(chosen)
        token_logprobs.append(logprobs[0])
        top.append(dict(zip(candidates[:top_k], logprobs[:top_k], strict=True)))
    return {
        "text": "".join(tokens),
        "logprobs": {
            "tokens": tokens,
            "token_logprobs": token_logprobs,
            "top_logprobs": top,
            "text_offset": [],
        },
    }


def gsm8k_answer(behaviour: Behaviour, prompt: str) -> str | None:
    """The answer to the prompt's last question, or None when it names no known question."""
    questions = QUESTION.findall(prompt)
    if not questions:
        return None
    question = questions[-1].strip()
    if question not in behaviour.answers:
        return None
    number = behaviour.answers[question]
    if question in behaviour.wrong:
        number = str(int(number) + 1) if number.lstrip("-").isdigit() else number + "1"
    return f" Let me think step by step. The answer follows.\n#### {number}\n\n"


def completion(behaviour: Behaviour, body: dict[str, Any]) -> dict[str, Any]:
    prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
    choices = []
    for index, prompt in enumerate(prompts):
        answer = gsm8k_answer(behaviour, prompt)
        if answer is not None:
            choice: dict[str, Any] = {"text": answer, "logprobs": None}
        else:
            choice = greedy(
                behaviour, prompt, int(body.get("max_tokens", 16)), int(body.get("logprobs") or 1)
            )
        choices.append({"index": index, "finish_reason": "length", **choice})
    return {"id": "cmpl-fake", "object": "text_completion", "created": 0, "model": MODEL, "choices": choices}


class FakeCompletions(HttpFake):
    """The server on a free port of 127.0.0.1, run in a thread; ``requests`` counts completions."""

    def __init__(self, behaviour: Behaviour, port: int = 0) -> None:
        self.behaviour = behaviour
        self.requests = 0
        super().__init__(_handler(self), port=port, poll_interval=0.02)

    @property
    def base_url(self) -> str:
        return self.root


def _handler(fake: FakeCompletions) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, {})
            elif self.path == "/v1/models":
                self._send(
                    200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "x"}]}
                )
            else:
                self._send(404, {"error": self.path})

        def do_POST(self) -> None:
            if self.path != "/v1/completions":
                self._send(404, {"error": self.path})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            fake.requests += 1
            self._send(200, completion(fake.behaviour, body))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gsm8k", type=Path)
    parser.add_argument("--wrong-every", type=int, default=0)
    parser.add_argument("--change-at", type=int)
    parser.add_argument("--near-tie-at", type=int)
    args = parser.parse_args()
    behaviour = load_gsm8k(args.gsm8k, args.wrong_every) if args.gsm8k else Behaviour({})
    behaviour.change_at, behaviour.near_tie_at = args.change_at, args.near_tie_at
    with FakeCompletions(behaviour, args.port) as fake:
        print(f"serving {MODEL} on {fake.base_url}", flush=True)
        fake.thread.join()


if __name__ == "__main__":
    main()
