"""A loopback TCP forwarder for outage tests: cut (listener and every connection closed) and
restored on the same port, so a client configured with its port sees a database go away and return."""

from __future__ import annotations

import asyncio
import contextlib

HOST = "127.0.0.1"


class TcpProxy:
    """A loopback TCP forwarder that can be cut (listener and every connection closed) and restored on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.connections = 0

    @classmethod
    async def start(cls, target_host: str, target_port: int) -> TcpProxy:
        proxy = cls(target_host, target_port)
        await proxy.restore()
        return proxy

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._handle, HOST, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        # Connections go before the wait: since CPython 3.12.1, wait_closed() waits for every
        # connection the server accepted to end, so waiting first would never return.
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(client_w)  # before the upstream connect, so a cut meanwhile drops it too
        try:
            up_r, up_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.transport.abort()
            self._writers.discard(client_w)
            return
        self._writers.add(up_w)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.transport.abort()

        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))
        self._writers -= {client_w, up_w}
