"""The admin port: the REST admin API (`api`), its OpenAPI document, the web dashboard and
its API, and the handlers of query tokens. Everything here talks to `clipper.control`."""
