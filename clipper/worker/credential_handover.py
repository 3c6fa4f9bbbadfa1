"""Handing a worker its registration credential over a pipe, not its environment or its
command line (which the model, `ps` and `/proc` can read): the starter writes it into a pipe
whose read end the worker inherits (`--credential-fd`); the worker reads it at start and
closes the pipe, so nothing of it is left for the model to find."""

from __future__ import annotations

import os

__all__ = ["CREDENTIAL_FD_FLAG", "credential_pipe", "read_credential"]

CREDENTIAL_FD_FLAG = "--credential-fd"
_MAX_BYTES = 4096


def credential_pipe(credential: str) -> int:
    """A pipe holding `credential` (its write end closed); the read end, to pass to the
    worker (`pass_fds`) and close afterwards."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, credential.encode())  # far under the pipe's buffer: no block
    finally:
        os.close(write_end)
    return read_end


def read_credential(fd: int) -> str:
    """The credential in the pipe at `fd`; the pipe is closed."""
    try:
        chunks = []
        while chunk := os.read(fd, _MAX_BYTES):
            chunks.append(chunk)
        return b"".join(chunks).decode().strip()
    finally:
        os.close(fd)
