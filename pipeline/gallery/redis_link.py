"""The Redis side of a shared gallery: one background thread that publishes, reads and reconnects.

:class:`RedisLink` owns a bounded, ordered outbound buffer of Redis Stream entries (``XADD``) and an
inbound queue of the entries other workers wrote to the mutation stream (``XREAD`` from the last id
read). The gallery never waits on Redis in its frame loop: it hands batches to :meth:`RedisLink.publish`
and takes what arrived with :meth:`RedisLink.received`. When Redis is unreachable the entries stay in the
buffer (in order; at most ``max_buffered`` mutations or the newest batch alone, the oldest dropped
beyond that, counted, and healed by a republish of the worker's state: :attr:`RedisLink.resync`), the
thread retries with exponential back-off (0.1 s doubling to 2 s) and, once connected, sends the buffer
in order before anything new. Delivery is at least once (an entry whose reply was lost is sent again):
the gallery's records are state-based, so a repeat is harmless.

A server that comes back *without* its data (a new ``run_id``: restarted without persistence) is
detected at reconnection: :attr:`RedisLink.resync` is set (the gallery republishes its own state), the
read position goes back to the start of the stream and the id counter is raised to at least the
largest id the worker knows (:attr:`RedisLink.min_counter`) or last read from the counter (read every
second: :attr:`RedisLink.counter_seen`, which covers the numbers other workers reserved for outages, even
ones this worker never saw used), so names are never handed out twice.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

RAISE_COUNTER = "local c = tonumber(redis.call('GET', KEYS[1]) or '0') " \
                "if c < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end return 0"


def _entry_id(text: str) -> tuple[int, int]:
    """A stream entry id ``ms-seq`` as a comparable pair (``"0"`` is ``(0, 0)``)."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class SharedGalleryError(ValueError):
    """A shared gallery cannot start: a malformed ``gallery.url`` or an unreachable server."""


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """Splits ``gallery.url`` into the Redis URL and this module's query options (``prefix``, ``worker``).

    Raises:
        SharedGalleryError: naming ``gallery.url``, when it is not a ``redis://``, ``rediss://`` or
            ``unix://`` URL.
    """
    try:
        parts = urlsplit(str(url))
    except ValueError as e:
        raise SharedGalleryError(f"gallery.url {url!r}: not a URL ({e}); expected redis://host:port/db") from None
    if parts.scheme not in ("redis", "rediss", "unix") or (parts.scheme != "unix" and not parts.hostname):
        raise SharedGalleryError(f"gallery.url {url!r}: expected redis://host:port/db (or rediss://, unix://), "
                                 f"e.g. redis://127.0.0.1:6379/0")
    query = dict(parse_qsl(parts.query))
    ours = {k: query.pop(k) for k in ("prefix", "worker") if k in query}
    try:
        _ = parts.port
    except ValueError as e:
        raise SharedGalleryError(f"gallery.url {url!r}: bad port ({e}); expected redis://host:port/db") from None
    return urlunsplit(parts._replace(query=urlencode(query))), ours


class RedisLink:
    """Publishes to and reads from Redis Streams in a background thread (see the module docstring).

    Args:
        url: ``redis://host:port/db`` (the gallery's own query options removed, see :func:`parse_url`).
        stream: The mutation stream read into :meth:`received`.
        me: This worker's key; entries whose ``w`` field is it are not handed back.
        counter: The id counter key (raised after a server restart).
        max_buffered: Most mutations held while Redis is unreachable.
        block_ms: Longest a read waits for new entries when there is nothing to send.

    Raises:
        SharedGalleryError: naming ``gallery.url``, when the server does not answer at start.
    """

    def __init__(self, url: str, stream: str, me: str, counter: str, *, max_buffered: int = 100_000,
                 block_ms: int = 20, shown_url: str | None = None) -> None:
        import redis

        self._redis = redis
        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.stream, self.me, self.counter = stream, me, counter
        self.max_buffered, self.block_ms = int(max_buffered), int(block_ms)
        self._out: deque = deque()  # (stream key, fields, mutations, maxlen or None)
        self._in: deque = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.buffered = 0
        """Mutations waiting to be sent."""
        self.dropped = 0
        """Mutations dropped because the buffer was full (then :attr:`resync` is set)."""
        self.round_trips = 0
        """Requests sent to Redis (a pipeline counts once)."""
        self.reconnects = 0
        self.resync = False
        """Set when the gallery should republish its own state (the server lost its data, or entries were
        dropped); the gallery clears it."""
        self.min_counter = 0
        """The largest identity number the worker knows (set by the gallery)."""
        self.counter_seen = 0
        """The id counter as last read (every second): numbers other workers reserved up to then, which a
        restarted server must not hand out again."""
        self._counter_read = -1e9
        self.last_id = "0"
        self.connected = False
        self._run_id: str | None = None
        self._synced_at = time.monotonic()
        try:
            self._connect()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            raise SharedGalleryError(f"gallery.url {shown_url or url}: cannot reach the Redis server ({e}); "
                                     f"start it, or leave gallery.url unset for the in-process gallery") from None
        self._thread = threading.Thread(target=self._run, name="reid-gallery-redis", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ main thread
    def publish(self, key: str, fields: dict, mutations: int = 0, maxlen: int | None = None) -> None:
        """Queues one ``XADD`` (sent in order; kept while Redis is unreachable)."""
        with self._lock:
            self._out.append((key, fields, mutations, maxlen))
            self.buffered += mutations
            while self.buffered > self.max_buffered and len(self._out) > 1:
                _, _, n, _ = self._out.popleft()
                self.buffered -= n
                self.dropped += n
                self.resync = True
        self._wake.set()

    def received(self) -> list[tuple[str, dict]]:
        """The mutation-stream entries of other workers read since the last call, in stream order."""
        out = []
        while self._in:
            out.append(self._in.popleft())
        return out

    def call(self, fn):
        """Runs ``fn(client)`` now when connected (one round trip); None when Redis is unreachable."""
        if not self.connected:
            return None
        try:
            self.round_trips += 1
            return fn(self.client)
        except (self._redis.ConnectionError, self._redis.TimeoutError, OSError):
            self.connected = False
            return None

    def sync_status(self) -> tuple[float, int]:
        """``(lag_seconds, buffered_mutations)``: seconds since the link was last in step with Redis (0 while
        it is) and the mutations waiting to be sent."""
        lag = 0.0 if self.connected and not self._out else time.monotonic() - self._synced_at
        return lag, self.buffered

    def read_to_end(self, timeout: float = 2.0) -> bool:
        """Waits up to ``timeout`` s until everything the mutation stream held at the call has been read (it is
        then in :meth:`received`); False when Redis is unreachable or the time ran out."""
        end = time.monotonic() + timeout

        def last_entry(client):
            try:
                return client.xinfo_stream(self.stream)["last-generated-id"]
            except self._redis.ResponseError:  # no such stream yet: nothing to read
                return b"0-0"

        last = self.call(last_entry)
        if last is None:
            return False
        target = _entry_id(last.decode() if isinstance(last, bytes) else str(last))
        self._wake.set()
        while _entry_id(self.last_id) < target:
            if time.monotonic() >= end:
                return False
            time.sleep(0.005)
        return True

    def flush(self, timeout: float = 2.0) -> bool:
        """Waits up to ``timeout`` s for the buffer to be sent; True when it was."""
        end = time.monotonic() + timeout
        self._wake.set()
        while self._out and time.monotonic() < end:
            time.sleep(0.005)
        return not self._out

    def close(self, timeout: float = 2.0) -> None:
        """Sends what it can within ``timeout`` s, then stops the thread; idempotent."""
        if not self._stop.is_set():
            self.flush(timeout)
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout)
            self.client.close()

    # ------------------------------------------------------------ the thread
    def _connect(self) -> None:
        info = self.client.info("server")
        self.round_trips += 1
        run_id = info.get("run_id")
        if self._run_id is not None and run_id != self._run_id:  # the server came back without its data
            self.last_id, self.resync = "0", True
        self._run_id = run_id
        floor = max(self.min_counter, self.counter_seen)
        if floor:
            self.client.eval(RAISE_COUNTER, 1, self.counter, int(floor))
            self.round_trips += 1
        self.connected = True

    def _run(self) -> None:
        backoff = 0.1
        errors = (self._redis.ConnectionError, self._redis.TimeoutError, OSError)
        while not self._stop.is_set():
            if not self.connected:
                try:
                    self._connect()
                    self.reconnects += 1
                    backoff = 0.1
                except errors:
                    self._stop.wait(backoff)
                    backoff = min(2.0, backoff * 2)
                    continue
            try:
                self._send()
                self._read()
                if time.monotonic() - self._counter_read >= 1.0:  # numbers others reserved: kept over a restart
                    self._counter_read = time.monotonic()
                    value = self.client.get(self.counter)
                    self.round_trips += 1
                    self.counter_seen = max(self.counter_seen, int(value or 0))
                if not self._out:
                    self._synced_at = time.monotonic()
            except errors:
                self.connected = False

    def _send(self) -> None:
        while self._out:
            with self._lock:
                batch = list(self._out)[:64]
            pipe = self.client.pipeline(transaction=False)
            for key, fields, _, maxlen in batch:
                pipe.xadd(key, fields, maxlen=maxlen, approximate=True)
            pipe.execute()
            self.round_trips += 1
            with self._lock:  # drop what was sent (the buffer may have lost its oldest meanwhile)
                for item in batch:
                    if self._out and self._out[0] is item:
                        self._out.popleft()
                        self.buffered -= item[2]

    def _read(self) -> None:
        block = None if self._out else self.block_ms
        self._wake.clear()
        reply = self.client.xread({self.stream: self.last_id}, count=500, block=block)
        self.round_trips += 1
        for _, entries in reply or []:
            for entry_id, fields in entries:
                entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
                w = fields.get("w", b"")
                if (w.decode() if isinstance(w, bytes) else w) != self.me:
                    self._in.append((entry_id, fields))
                self.last_id = entry_id  # after the entry is queued: read_to_end relies on it


__all__ = ["RedisLink", "SharedGalleryError", "parse_url"]
