"""uvicorn's HTTP protocol (httptools) with read deadlines, so that slow or silent clients
cannot hold connections forever: the headers of a request must arrive within
HEADER_SECONDS of its first byte (or of the connection's opening), and its body at
BODY_MIN_RATE bytes/s on average after that (a chunked body: with no pause longer than
BODY_IDLE_SECONDS). Past a deadline the connection is closed, with one log line."""

from __future__ import annotations

import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("threadloom.api")

HEADER_SECONDS = 10.0
BODY_MIN_RATE = 64 * 1024
BODY_IDLE_SECONDS = 15.0


class GuardedHttpProtocol(HttpToolsProtocol):
    header_seconds = HEADER_SECONDS  # set from --read-timeout at start
    _deadline = None
    _chunked = False

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, what)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, what: str) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            client = "%s:%d" % self.client if self.client else "a client"
            log.warning("closed the connection of %s: %s did not arrive in time", client, what)
            self.transport.close()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm(self.header_seconds, "its request")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_seconds, "the request's headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        length, self._chunked = 0, False
        for name, value in self.headers:
            if name == b"content-length" and value.isdigit():
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True
        if self._chunked:
            self._arm(max(self.header_seconds, BODY_IDLE_SECONDS), "the request's body")
        elif length:
            self._arm(self.header_seconds + length / BODY_MIN_RATE, "the request's body")
        else:
            self._disarm()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._chunked:
            self._arm(max(self.header_seconds, BODY_IDLE_SECONDS), "the request's body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)
