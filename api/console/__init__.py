"""The web console at /console: the pages each role does its daily work on, over the same domain functions
and the same authorization as the API, signed in by `api.console.signin`."""

from fastapi import APIRouter

from api.console import consumer, pages, platform, provider
from api.console.render import HERE

router = APIRouter()
for area in (pages, platform, provider, consumer):
    router.include_router(area.router)

__all__ = ["HERE", "router"]
