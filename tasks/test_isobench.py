"""The ISO-Bench task suite: the plugin parametrises this test with one item per task file."""

from pytest_isobench import Outcome, require_hard_pass


def test_task(isobench_outcome: Outcome) -> None:
    require_hard_pass(isobench_outcome)
