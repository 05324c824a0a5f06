"""Remote profiling against a real OpenSSH server on 127.0.0.1 (throwaway keys, started by the fixture)."""

import json
import socket
import sys

import pytest

from edgekit.cli import main
from edgekit.profile import profiler


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _ssh_args(server, remote_dir, python=sys.executable):
    args = ["--ssh-key", server.key, "--ssh-port", server.port, "--remote-python", python,
            "--remote-dir", remote_dir]
    for opt in server.ssh_options:
        args += ["--ssh-option", opt]
    return args


def test_two_hosts_in_parallel_each_get_a_result(ssh_server, digits_models, tmp_path, capsys):
    model = digits_models("int8")
    host_b = f"{ssh_server.host.split('@')[0]}@localhost"  # the same server under a second name
    out = tmp_path / "remote.json"
    code, stdout, err = run(capsys, "profile", model, "--host", ssh_server.host, "--host", host_b,
                            "--runs", 30, "--warmup", 3, "--threads", "1,2", "--json", out,
                            *_ssh_args(ssh_server, tmp_path / "device"))
    assert code == 0, err
    files = sorted(tmp_path.glob("remote-*.json"))
    assert len(files) == 2
    for f, host in zip(files, sorted([ssh_server.host, host_b])):
        doc = json.loads(f.read_text())
        assert doc["device"] == {"kind": "ssh", "name": host}
        assert [r["threads"] for r in doc["rows"]] == [1, 2]
        assert doc["rows"][0]["latency_ms"]["count"] == 30 and doc["rows"][0]["memory"]["peak_mb"] > 0
        assert doc["machine"]["cores"] >= 1
        assert doc["model"]["file"] == model.name
    assert stdout.count("int8") >= 2
    copies = list((tmp_path / "device").glob("*.tflite"))
    assert len(copies) == 1 and copies[0].read_bytes() == model.read_bytes()


def test_remote_budget_failure_exits_1(ssh_server, digits_models, tmp_path, capsys):
    code, _, err = run(capsys, "profile", digits_models("int8"), "--host", ssh_server.host, "--runs", 10,
                       "--max-latency-ms", "0.000001", *_ssh_args(ssh_server, tmp_path / "device"))
    assert code == 1 and "over budget" in err and "p95" in err


def test_unreachable_host_is_one_line_exit_2(ssh_server, digits_models, tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = _ssh_args(ssh_server, tmp_path / "device")
    args[args.index("--ssh-port") + 1] = port
    code, _, err = run(capsys, "profile", digits_models("int8"), "--host", ssh_server.host, *args)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {ssh_server.host}: cannot connect over ssh") and "refused" in err


def test_missing_remote_python_is_one_line_exit_2(ssh_server, digits_models, tmp_path, capsys):
    args = _ssh_args(ssh_server, tmp_path / "device", python="/no/such/python3")
    code, _, err = run(capsys, "profile", digits_models("int8"), "--host", ssh_server.host, *args)
    assert code == 2 and "'/no/such/python3' not found on the device" in err and err.count("\n") == 1


def test_remote_custom_op_is_named(ssh_server, custom_op_model, tmp_path, capsys):
    code, _, err = run(capsys, "profile", custom_op_model, "--host", ssh_server.host,
                       *_ssh_args(ssh_server, tmp_path / "device"))
    assert code == 2 and "unresolved custom op EdgekitMadeUpOp" in err


@pytest.mark.slow
def test_remote_input_file_is_copied_too(ssh_server, digits_models, digits, tmp_path, capsys):
    import numpy as np

    x = tmp_path / "x.npz"
    np.savez(x, x=digits.x_test[:8])
    out = tmp_path / "r.json"
    code, _, err = run(capsys, "profile", digits_models("fp32"), "--host", ssh_server.host, "--runs", 10,
                       "--input", x, "--json", out, *_ssh_args(ssh_server, tmp_path / "device"))
    assert code == 0, err
    assert json.loads(out.read_text())["rows"][0]["inputs"][0]["samples"] == 8
    assert len(list((tmp_path / "device").glob("*.npz"))) == 1


def test_host_alias_from_an_ssh_config_file(ssh_server, digits_models, tmp_path, capsys):
    config = tmp_path / "ssh_config"
    user = ssh_server.host.split("@")[0]
    config.write_text(f"Host edge-box\n  HostName 127.0.0.1\n  Port {ssh_server.port}\n  User {user}\n"
                      f"  IdentityFile {ssh_server.key}\n"
                      + "".join(f"  {opt.replace('=', ' ')}\n" for opt in ssh_server.ssh_options))
    out = tmp_path / "r.json"
    code, _, err = run(capsys, "profile", digits_models("int8"), "--host", "edge-box", "--ssh-config", config,
                       "--remote-python", sys.executable, "--remote-dir", tmp_path / "device", "--runs", 10,
                       "--json", out)
    assert code == 0, err
    assert json.loads(out.read_text())["device"] == {"kind": "ssh", "name": "edge-box"}


def test_remote_crash_is_reported_as_a_crash_not_a_connection_failure(ssh_server, digits_models, tmp_path, capsys,
                                                                     monkeypatch):
    # the device's measuring process dies by SIGSEGV while loading, for certain (the child's test hook): the
    # hostile crash.tflite faults by undefined behaviour, which over this SSH session stopped faulting
    # (tests/profile/test_profile_local.py still runs it for real)
    monkeypatch.setenv(profiler.TEST_HOOK_ENV, "crash:load")
    code, _, err = run(capsys, "profile", digits_models("int8"), "--host", ssh_server.host,
                       *_ssh_args(ssh_server, tmp_path / "device"))
    assert code == 2 and "died with SIGSEGV" in err and "cannot connect" not in err, err


HOSTILE_RESULT = {"threads": "<script>alert(1)</script>", "interpreter": {"package": "x", "version": "1"},
                  "timing": {"samples_ms": [0.1, 0.2, 0.3], "load_ms": 1.0, "init_ms": 1.0,
                             "first_inference_ms": 1.0},
                  "memory": {"peak_rss_sampled_mb": 10.0, "ru_maxrss_mb": 10.0},
                  "machine": {"hostname": "h"}, "per_op": {"available": False, "reason": "none"}}


def test_a_device_reporting_markup_as_threads_is_refused_and_never_reaches_the_report(ssh_server, digits_models,
                                                                                     tmp_path, capsys):
    """A hostile device (its python answers with a forged result) must not inject script into the HTML."""
    device_python = tmp_path / "hostile-python"
    device_python.write_text("#!/bin/sh\ncat > /dev/null\n"
                             f"echo 'EDGEKIT-RESULT {json.dumps(HOSTILE_RESULT)}'\n")
    device_python.chmod(0o755)
    report = tmp_path / "report.html"
    code, _, err = run(capsys, "profile", digits_models("int8"), "--host", ssh_server.host, "--report", report,
                       *_ssh_args(ssh_server, tmp_path / "device", python=str(device_python)))
    assert code == 2 and err.count("\n") == 1 and "result.threads" in err, err
    assert not report.exists() or "<script>" not in report.read_text()


@pytest.mark.parametrize("command", ["profile", "deploy"])
def test_a_host_that_is_an_ssh_option_is_refused_before_ssh_runs(command, digits_models, tmp_path, capsys):
    marker = tmp_path / "proxy-ran"
    extra = ["--store", tmp_path / "store"] if command == "deploy" else []
    code, _, err = run(capsys, command, digits_models("int8"), *extra, f"--host=-oProxyCommand=touch {marker}")
    assert code == 2 and err.count("\n") == 1 and "cannot start with '-'" in err, err
    assert not marker.exists()
