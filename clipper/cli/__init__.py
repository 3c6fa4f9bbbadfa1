"""The `clipper` command line (`main.main`), its commands and the launcher of detached servers.

The top layer with `clipper.server`: nothing else in the package imports it. Imports
nothing itself, so that `clipper_admin` can use the launcher without the whole CLI.
"""
