"""``GET /``: a short page saying what this service is, instead of a 404 for whoever opens the bare address.

Citizens arrive here from a city service, never by typing the address; someone who does gets told that,
and (where the demo service runs) where to try a sign-in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from eid_gateway.web.render import render_page


def home_page(*, demo_path: str | None) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler; ``demo_path`` is the demo service's address when it runs, else None."""

    async def home(request: web.Request) -> web.StreamResponse:
        return render_page(request, "home.html", demo_path=demo_path)

    return home
