"""The web console at /console: the pages each role does its daily work on, over the same domain functions
and the same authorization as the API (`api.console.pages`), signed in by `api.console.signin`."""

from api.console.pages import router

__all__ = ["router"]
