"""The grader's kernel client (tools/kernel_client.py): a lost socket wake-up costs one slice,
not the whole cell timeout; and the course's nbgrader config uses it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from queue import Empty

import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

from tools.kernel_client import SLICE_S, WakefulChannel, WakefulKernelClient

ROOT = Path(__file__).resolve().parents[1]


async def _get(channel_class: type, timeout: float, *, queued: bool, deaf: bool):
    """``get_msg(timeout)`` on a DEALER whose ROUTER peer may have sent one message; with
    ``deaf`` the socket's asyncio poll never wakes (the lost edge), as seen when grading."""
    ctx = zmq.asyncio.Context()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    try:
        router.bind("inproc://kernel")
        dealer.connect("inproc://kernel")
        session = Session()
        if queued:
            await dealer.send(b"hello")
            ident = (await router.recv_multipart())[0]
            session.send(router, "execute_reply", {"status": "ok"}, ident=ident)
            await asyncio.sleep(0.05)  # in the DEALER's queue now
        if deaf:
            async def never(timeout=None, flags=zmq.POLLIN):
                await asyncio.sleep((timeout or 0) / 1000)
                return 0
            dealer.poll = never
        channel = channel_class(dealer, session)
        started = time.monotonic()
        try:
            return await channel.get_msg(timeout=timeout), time.monotonic() - started
        except Empty:
            return None, time.monotonic() - started
    finally:
        router.close(linger=0)
        dealer.close(linger=0)
        ctx.term()


def test_a_queued_reply_is_read_even_when_the_wake_up_is_lost():
    msg, waited = asyncio.run(_get(WakefulChannel, 5.0, queued=True, deaf=True))
    assert msg is not None and msg["header"]["msg_type"] == "execute_reply"
    assert waited < SLICE_S + 0.5
    # the stock channel, deaf the same way, sleeps out the whole timeout and finds nothing
    msg, waited = asyncio.run(_get(AsyncZMQSocketChannel, 1.0, queued=True, deaf=True))
    assert msg is None and waited >= 1.0


def test_no_message_is_empty_after_the_timeout_and_a_message_comes_at_once():
    msg, waited = asyncio.run(_get(WakefulChannel, 0.7, queued=False, deaf=False))
    assert msg is None and 0.7 <= waited < 1.5
    msg, waited = asyncio.run(_get(WakefulChannel, 5.0, queued=True, deaf=False))
    assert msg["content"] == {"status": "ok"} and waited < 0.5


def test_the_course_config_grades_with_the_wakeful_client():
    from jupyter_client.manager import AsyncKernelManager
    from nbgrader.preprocessors import Execute
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    execute = Execute(config=config)
    manager = execute.kernel_manager_class(config=execute.config)
    assert isinstance(manager, AsyncKernelManager)
    assert manager.client_factory is WakefulKernelClient


@pytest.mark.parametrize("channel", ["shell", "iopub", "control"])
def test_every_channel_the_grader_reads_is_wakeful(channel):
    assert getattr(WakefulKernelClient, f"{channel}_channel_class").default_value is WakefulChannel


def test_the_client_loads_neither_torch_nor_the_course_library():
    """Validate imports it into the Jupyter server (students' config), the grader into each
    nbgrader process: it must stay light (tools/kernel_client.py's docstring)."""
    code = ("import sys, tools.kernel_client; "
            "print(sorted({'torch', 'accel_lib', 'tensorflow'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout
