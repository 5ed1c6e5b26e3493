from __future__ import annotations

import io
import json
import logging

from mloop import logs


def test_json_lines_carry_context_and_extra_fields() -> None:
    stream = io.StringIO()
    logs.configure("INFO", "json", stream)
    log = logging.getLogger("mloop.test")
    with logs.log_context(actor="alice", request_id="r-1"):
        log.info("predicted", extra={"rows": 3})
        with logs.log_context(run_id="run-9"):
            log.warning("slow")
    log.info("outside")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["msg"] == "predicted" and lines[0]["actor"] == "alice" and lines[0]["request_id"] == "r-1"
    assert lines[0]["rows"] == 3 and lines[0]["level"] == "info"
    assert lines[1]["run_id"] == "run-9" and lines[1]["actor"] == "alice"
    assert "actor" not in lines[2]


def test_auto_format_is_json_when_not_a_terminal() -> None:
    stream = io.StringIO()
    logs.configure("DEBUG", "auto", stream)
    logging.getLogger("mloop.x").debug("hello")
    assert json.loads(stream.getvalue())["msg"] == "hello"
