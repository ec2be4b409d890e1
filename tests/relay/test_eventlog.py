import json
import logging

from hostingmail.logjson import JsonFormatter, ScrubSecrets
from relay import eventlog


def test_session_events_are_fields_of_the_json_line(caplog):
    with caplog.at_level(logging.INFO, logger="hostingmail.relay"):
        eventlog.event("accepted", session="abc123", queue_id="4F2A9B", customer=7, client="192.0.2.1",
                       result="queued", module="a LogRecord attribute: only in the text")
    record = caplog.records[-1]
    assert "event=accepted" in record.getMessage() and "queue_id=4F2A9B" in record.getMessage()
    ScrubSecrets().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "accepted"
    assert (line["queue_id"], line["customer"], line["client"], line["result"]) == ("4F2A9B", 7, "192.0.2.1", "queued")
