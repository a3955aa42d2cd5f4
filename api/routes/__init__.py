"""The API's routes, one module and one router per area; `api.app.create_app` assembles them."""
