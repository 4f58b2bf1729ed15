"""The operator identity written on every audit row."""

from __future__ import annotations

import os
import pwd
import socket

from console.identity import Operator


def test_current_operator_is_the_os_user_of_this_process() -> None:
    op = Operator.current(env={})
    assert op.user == pwd.getpwuid(os.getuid()).pw_name
    assert op.pid == os.getpid()
    assert op.console_host == socket.gethostname()
    assert op.ssh_client is None


def test_ssh_client_comes_from_ssh_connection_then_ssh_client() -> None:
    conn = {"SSH_CONNECTION": "10.1.2.3 50022 10.0.0.1 22", "SSH_CLIENT": "9.9.9.9 1 22"}
    assert Operator.current(env=conn).ssh_client == "10.1.2.3 50022"
    assert Operator.current(env={"SSH_CLIENT": "10.1.2.4 40000 22"}).ssh_client == "10.1.2.4 40000"
    assert Operator.current(env={"SSH_CONNECTION": "garbage"}).ssh_client is None


def test_the_user_is_not_taken_from_the_environment() -> None:
    assert Operator.current(env={"USER": "root-impostor"}).user != "root-impostor"


def test_describe_names_user_origin_and_terminal() -> None:
    op = Operator("alice", "10.0.0.5 50022", "/dev/pts/3", "jump1", 1)
    assert op.describe() == "alice from 10.0.0.5 50022 on /dev/pts/3"
