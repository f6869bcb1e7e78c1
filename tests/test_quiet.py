"""Third-party chatter kept off the terminal: what Paddle's own files log below ERROR through the
root logger is dropped once ``quiet_third_party`` ran; the program's own records are not."""

from __future__ import annotations

import logging

import pytest
from paddle.autograd.backward_utils import warning_once

from pulse_cli.quiet import THIRD_PARTY_RECORDS, quiet_third_party


@pytest.fixture()
def quiet():
    root = logging.getLogger()
    had = THIRD_PARTY_RECORDS in root.filters
    quiet_third_party()
    yield
    if not had:
        root.removeFilter(THIRD_PARTY_RECORDS)


def test_paddles_root_logger_warnings_are_dropped_and_the_programs_kept(quiet, caplog):
    with caplog.at_level(logging.WARNING):
        warning_once("input provided by inputs has no use (from a test)")  # Paddle's own call
        logging.warning("the program's own warning")
    assert "the program's own warning" in caplog.text
    assert "from a test" not in caplog.text


def test_paddles_errors_still_reach_the_terminal():
    record = logging.LogRecord("root", logging.ERROR, "/x/site-packages/paddle/a.py", 1, "broken", None, None)
    assert THIRD_PARTY_RECORDS.filter(record)
    record.levelno = logging.WARNING
    assert not THIRD_PARTY_RECORDS.filter(record)
