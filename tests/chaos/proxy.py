"""A TCP proxy in the test process that can cut the line: put between the app and MariaDB,
it simulates the database going away (and coming back) without touching the server."""

from __future__ import annotations

import socket
import struct
import threading


def _reset(sock: socket.socket) -> None:
    """Close with a RST (SO_LINGER 0), after waking any thread blocked on the socket."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Pair:
    """One proxied connection: the client's socket, the upstream one and their two pumps."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._pumps_left = 2

    def pump_finished(self) -> bool:
        """Called by each pump as it ends: the first ends the other side too, the last closes
        both sockets (and returns True)."""
        with self._lock:
            self._pumps_left -= 1
            last = self._pumps_left == 0
        if last:
            self.client.close()
            self.upstream.close()
        else:
            _reset(self.client)
            _reset(self.upstream)
        return last


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; ``cut()`` drops every proxied connection and
    refuses new ones (the listening socket is closed), ``restore()`` listens on the same port."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 3306)) -> None:
        self.upstream = upstream
        self.port = 0
        self.accepted = 0  # connections accepted since start (each forwarded to the upstream)
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._finished: list[_Pair] = []
        self._acceptor: threading.Thread | None = None
        self._open = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def cut(self) -> int:
        """Stop accepting (new connections are refused) and reset every open one; returns
        how many were reset."""
        self._stop_listening()
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            _reset(pair.client)
            _reset(pair.upstream)
        self._join(pairs)
        return len(pairs)

    def restore(self) -> None:
        self._listen()

    def close(self) -> None:
        self.cut()
        self._join(self._finished)

    @property
    def live(self) -> int:
        """Connections open right now."""
        with self._lock:
            return len(self._pairs)

    # -- internals ---------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Same port after a cut, though connections on it may still be in TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.05)  # the acceptor checks for a cut this often
        self.port = listener.getsockname()[1]
        with self._lock:
            self._open = True
        self._acceptor = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True)
        self._acceptor.start()

    def _stop_listening(self) -> None:
        with self._lock:
            self._open = False
        if self._acceptor is not None:
            self._acceptor.join()
            self._acceptor = None

    def _accept_loop(self, listener: socket.socket) -> None:
        try:
            while True:
                with self._lock:
                    if not self._open:
                        return
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                try:
                    upstream = socket.create_connection(self.upstream, timeout=2)
                except OSError:
                    _reset(client)
                    client.close()
                    continue
                upstream.settimeout(None)
                pair = _Pair(client, upstream)
                with self._lock:
                    if not self._open:  # cut meanwhile
                        _reset(client)
                        _reset(upstream)
                        client.close()
                        upstream.close()
                        return
                    self._pairs.add(pair)
                    self.accepted += 1
                    self._finished = [p for p in self._finished if any(t.is_alive() for t in p.threads)]
                for source, target in ((client, upstream), (upstream, client)):
                    thread = threading.Thread(target=self._pump, args=(pair, source, target), daemon=True)
                    pair.threads.append(thread)
                    thread.start()
        finally:
            # Closing the listening socket is what makes new connections refused.
            listener.close()

    def _pump(self, pair: _Pair, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            if pair.pump_finished():
                with self._lock:
                    self._pairs.discard(pair)
                    self._finished.append(pair)  # joined by close()

    def _join(self, pairs: list[_Pair]) -> None:
        for pair in pairs:
            for thread in pair.threads:
                if thread is not threading.current_thread():
                    thread.join(timeout=5)
