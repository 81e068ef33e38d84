"""The path prefix of version 1 of the API; each v1 router carries it in full, so the app can
take their routes directly (see `app.api.v1.router`)."""

API_PREFIX = "/api/v1"
