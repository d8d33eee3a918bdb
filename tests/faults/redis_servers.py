"""Redis outages a test can cause: a private server frozen with SIGSTOP, and a
port that takes connections and never answers.

A frozen Redis is the nasty outage: the kernel still completes TCP handshakes
into the listen backlog and takes the bytes a client writes, so nothing is
refused and every client waits for a reply until its own timeout gives up.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.broker import RedisServer


class FreezableRedisServer(RedisServer):
    """The test's own ``redis-server`` (tests/support/broker.py) that can be frozen and thawed."""

    @property
    def broker_url(self) -> str:
        """Database 1 of the same server, for Celery, as the test command lays them out."""
        return self.url.rsplit("/", 1)[0] + "/1"

    def pause(self) -> None:
        """SIGSTOP: the process stops, its sockets stay open."""
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: Redis answers again, replaying what clients wrote meanwhile."""
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            self.resume()  # a stopped process would not act on SIGTERM
        super().stop()


@contextmanager
def silent_redis() -> Iterator[str]:
    """A Redis URL whose server takes TCP connections and never answers — what
    a frozen Redis looks like to a client — without a process to freeze."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)  # never accepted: the kernel completes the handshakes, nobody reads
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


# Nothing listens on port 1 (privileged, unused): connections are refused at once.
REFUSED_REDIS_URL = "redis://127.0.0.1:1/0"
