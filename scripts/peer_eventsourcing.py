"""The peer baseline: Python `eventsourcing`'s chunked append and read-back on SQLite.

Appends EVENTS events in saves of CHUNK events each (one aggregate per save: created,
then CHUNK - 1 more events, then `save`, which writes them in one transaction), then
reads every aggregate back through the repository (events decoded and replayed into
the aggregate). Prints one JSON line: events/s for each side.

Run by scripts/bench-peer.sh, which installs the library; not part of the test suite.
"""

import json
import os
import sys
import tempfile
import time

EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
CHUNK = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
# About the size of a Toka event's JSON payload (a task's kind, ids and description).
NOTE = "summarise the incident report, then file a ticket for whoever is on call" * 2

with tempfile.TemporaryDirectory() as tmp:
    os.environ["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
    os.environ["SQLITE_DBNAME"] = os.path.join(tmp, "peer.db")

    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Queue(Aggregate):
        @event("Opened")
        def __init__(self, name):
            self.name = name
            self.notes = 0

        @event("Noted")
        def note(self, text):
            self.notes += 1

    app = Application()
    ids = []
    started = time.perf_counter()
    written = 0
    while written < EVENTS:
        n = min(CHUNK, EVENTS - written)
        queue = Queue(f"q{len(ids)}")
        for _ in range(n - 1):
            queue.note(NOTE)
        app.save(queue)
        ids.append(queue.id)
        written += n
    append_seconds = time.perf_counter() - started

    started = time.perf_counter()
    read = 0
    for i in ids:
        read += app.repository.get(i).notes + 1
    read_seconds = time.perf_counter() - started
    if read != written:
        sys.exit(f"read back {read} events of {written}")
    print(
        json.dumps(
            {
                "events": written,
                "chunk": CHUNK,
                "append_per_second": written / append_seconds,
                "read_per_second": read / read_seconds,
            }
        )
    )
