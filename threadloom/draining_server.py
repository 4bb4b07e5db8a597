"""uvicorn's server with a drain before its shutdown."""

from __future__ import annotations

import uvicorn


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT: stop accepting, let running turns finish within the grace period,
    end the others cleanly (text kept, streams closed with the run's final event); then
    uvicorn's own shutdown closes what is left. A second signal cuts the drain short."""

    def __init__(self, config: uvicorn.Config, app):
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets=None):
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        drain = getattr(self.app.state, "drain", None)
        if drain is not None:
            await drain(lambda: self.force_exit)
        await super().shutdown(sockets)
