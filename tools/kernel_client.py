"""A kernel client for the grader that cannot miss a message: ``c.AsyncKernelManager.client_class``.

nbgrader's ``Execute`` (nbconvert's ``ExecutePreprocessor``) waits for each execute reply with
``await socket.poll(timeout)`` on a ``zmq.asyncio`` socket. That wait wakes on the socket's
edge-triggered file descriptor, and now and then (seen after a cell that displays an
ipywidgets explorer, on a loaded machine) the edge is consumed elsewhere: the reply sits in
the socket while the client sleeps out the whole ``Execute.timeout`` (180 s here), then
finds it and carries on as if nothing happened. A notebook that runs in 20 s took 200 s to
grade, for no fault of the submission.

This client's channels wait in short slices and, before each, ask libzmq itself
(``zmq.EVENTS``, which also re-arms the descriptor) whether a message is there: a missed
wake-up costs at most one slice. Nothing else changes: the same messages, in the same order,
with the same overall timeout.

Students' *Validate* uses it too: the student distribution (tools/dist.py) ships this module,
and its nbgrader_config.py (tools/student/) selects it where it is importable. It needs only
jupyter_client, pyzmq and traitlets, which nbgrader brings. (It is not in accel_lib, which
students always have, because importing accel_lib loads torch, about 1.5 s and 270 MB, into
the Jupyter server or nbgrader process, which only drives the kernel; a test keeps it so.)
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

import zmq
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from traitlets import Type
from traitlets.config import Config

SLICE_S = 0.5


class WakefulChannel(AsyncZMQSocketChannel):
    """``get_msg`` that checks the socket's own state every ``SLICE_S`` seconds."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        assert self.socket is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.socket.get(zmq.EVENTS) & zmq.POLLIN:
                return await self._recv()
            left = SLICE_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise Empty
            if await self.socket.poll(int(1000 * min(SLICE_S, left))):
                return await self._recv()


class WakefulKernelClient(AsyncKernelClient):
    """``AsyncKernelClient`` whose shell, iopub and control channels are ``WakefulChannel``."""

    shell_channel_class = Type(WakefulChannel)  # type: ignore[assignment]
    iopub_channel_class = Type(WakefulChannel)  # type: ignore[assignment]
    control_channel_class = Type(WakefulChannel)  # type: ignore[assignment]


def wakeful_config() -> Config:
    """A traitlets ``Config`` for ``nbclient.NotebookClient(..., config=...)``: the same client
    for notebooks this repository executes outside nbgrader."""
    config = Config()
    config.AsyncKernelManager.client_class = f"{__name__}.WakefulKernelClient"
    return config
