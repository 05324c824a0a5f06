"""Timeouts, Ctrl-C and failed hosts: nothing edgekit started keeps running, the results that exist are kept.

A child that hangs comes from the child's test hook (EDGEKIT_TEST_HOOK_HANG_AT=start|load|runs:
sleep forever there); "start" is before the child arms its own deadline, so only the parent's
kill can end it. The SSH "device" is this machine behind a real sshd, so psutil sees whether
the remote python survived.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from edgekit.cli import main
from edgekit.profile import processes, profiler

WORKTREE = Path(__file__).resolve().parents[2]
# The CLI with Python's own Ctrl-C handler: a child of a shell's background job starts with SIGINT ignored
# (no job control: POSIX), so without this the test's SIGINT would never reach it.
INTERRUPTIBLE = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "from edgekit.cli import entry; entry()")


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def alive(marker: str) -> list[psutil.Process]:
    """Live (not zombie) processes whose command line mentions ``marker``, other than this one."""
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.pid != os.getpid() and p.info["status"] != psutil.STATUS_ZOMBIE and \
                    marker in " ".join(p.info["cmdline"] or []):
                out.append(p)
        except psutil.Error:
            pass
    return out


def wait_for(predicate, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture()
def own_model(digits_models, tmp_path) -> Path:
    """The int8 digits model under a path no other test uses: it marks this test's processes."""
    path = tmp_path / "marked-model.tflite"
    shutil.copyfile(digits_models("int8"), path)
    return path


def _ssh_args(server, remote_dir):
    args = ["--ssh-key", server.key, "--ssh-port", server.port, "--remote-python", sys.executable,
            "--remote-dir", remote_dir]
    for opt in server.ssh_options:
        args += ["--ssh-option", opt]
    return args


@pytest.mark.parametrize("point", ["runs", "start"])
def test_local_timeout_kills_the_child_and_exits_1(own_model, monkeypatch, capsys, point):
    monkeypatch.setenv(profiler.TEST_HOOK_ENV, point)
    t0 = time.monotonic()
    code, _, err = run(capsys, "profile", own_model, "--runs", 5, "--timeout", 1)
    took = time.monotonic() - t0
    assert code == 1, err
    last = err.strip().splitlines()[-1]  # after the progress bar's lines
    assert last == (f"error: {own_model}: the run with 1 thread did not finish within 1 s and was killed; "
                    "pass a larger --timeout if it needs longer")
    # "runs": the child's own deadline fired at 1 s; "start": the parent's kill, GRACE_S later
    assert took < (1 + processes.GRACE_S + 5 if point == "start" else 1 + processes.GRACE_S)
    assert wait_for(lambda: not alive(str(own_model)), 5), alive(str(own_model))


def test_a_normal_run_is_far_inside_the_default_timeout(own_model):
    doc = profiler.profile_model(own_model, runs=20, warmup=2)
    assert doc["settings"]["timeout_s"] == processes.DEFAULT_TIMEOUT_S == 600
    assert doc["rows"][0]["timing"]["wall_s"] < processes.DEFAULT_TIMEOUT_S / 100


def test_bad_timeout_is_one_line_exit_2(own_model, capsys):
    code, _, err = run(capsys, "profile", own_model, "--timeout", 0)
    assert code == 2 and err.strip() == "error: --timeout must be a positive number of seconds, got 0.0"


def test_ssh_timeout_kills_the_remote_process_too(ssh_server, own_model, tmp_path, monkeypatch, capsys):
    """Hung before the child's own deadline: only edgekit's kill over ssh can stop the device's python."""
    device = tmp_path / "device"
    monkeypatch.setenv(profiler.TEST_HOOK_ENV, "start")
    code, _, err = run(capsys, "profile", own_model, "--host", ssh_server.host, "--runs", 5, "--timeout", 4,
                       *_ssh_args(ssh_server, device))  # 4 s: the copies over ssh must fit in it
    assert code == 1, err
    assert err.strip().splitlines()[-1].startswith(
        f"error: {ssh_server.host}: marked-model.tflite: the run with 1 thread did not finish within 4 s and was killed")
    assert wait_for(lambda: not alive(str(device)), 5), [p.cmdline() for p in alive(str(device))]


def _cli(args, env_extra):
    env = dict(os.environ, **env_extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(WORKTREE), env.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-c", INTERRUPTIBLE, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _tgkill(pid: int, tid: int, sig: int) -> None:
    """Send ``sig`` to one thread of process ``pid`` (os.kill lets the kernel pick any thread)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(234, pid, tid, sig) != 0:  # SYS_tgkill on x86_64
        raise OSError(ctypes.get_errno(), f"tgkill({pid}, {tid}) failed")


def _to_the_process(cli) -> None:
    os.kill(cli.pid, signal.SIGINT)


def _to_a_worker_thread(cli) -> None:
    others = [t.id for t in psutil.Process(cli.pid).threads() if t.id != cli.pid]
    assert others, "the CLI has no thread besides the main one"
    _tgkill(cli.pid, others[-1], signal.SIGINT)


@pytest.mark.parametrize("where", ["local", "ssh"])
@pytest.mark.parametrize("press", [_to_the_process, _to_a_worker_thread], ids=["process", "worker-thread"])
def test_ctrl_c_stops_every_process_and_exits_130(ssh_server, own_model, tmp_path, where, press):
    """Ctrl-C while the child measures: exit 130, nothing left running, here or on the device.

    A process-wide SIGINT goes to whichever thread the kernel picks; on a busy machine that was
    sometimes not the main thread, which then stayed blocked in a read (or a future's wait) that the
    signal never interrupted: the CLI ran on for minutes. "worker-thread" sends it to a non-main
    thread on purpose, every time."""
    device = tmp_path / "device"
    args = ["profile", own_model, "--runs", 5]
    marker = str(own_model)
    if where == "ssh":
        args += ["--host", ssh_server.host, *_ssh_args(ssh_server, device)]
        marker = str(device)  # the device's python has the remote model path in its command line
    cli = _cli(args, {profiler.TEST_HOOK_ENV: "runs"})
    try:
        # the measuring fork is there (two processes: the child and its fork) before we press Ctrl-C
        assert wait_for(lambda: len([p for p in alive(marker) if p.pid != cli.pid]) >= 2, 60), cli.stderr
        press(cli)
        _, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("\r")]
    assert lines[-1] == "error: interrupted; stopped profiling and every process it had started", err
    assert wait_for(lambda: not alive(marker), 5), [p.cmdline() for p in alive(marker)]


def test_one_failed_host_keeps_the_others_results_and_exits_1(ssh_server, digits_models, tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    user = ssh_server.host.split("@")[0]
    opts = "".join(f"  {opt.replace('=', ' ')}\n" for opt in ssh_server.ssh_options)
    config = tmp_path / "ssh_config"
    config.write_text(f"Host edge-box\n  HostName 127.0.0.1\n  Port {ssh_server.port}\n  User {user}\n"
                      f"  IdentityFile {ssh_server.key}\n{opts}"
                      f"Host dead-box\n  HostName 127.0.0.1\n  Port {dead_port}\n  User {user}\n{opts}")
    out = tmp_path / "r.json"
    code, stdout, err = run(capsys, "profile", digits_models("int8"), "--host", "edge-box", "--host", "dead-box",
                            "--ssh-config", config, "--remote-python", sys.executable, "--remote-dir",
                            tmp_path / "device", "--runs", 10, "--json", out, "--report", tmp_path / "r.html")
    assert code == 1, err
    assert sorted(p.name for p in tmp_path.glob("r-*")) == ["r-edge-box.html", "r-edge-box.json"]
    assert json.loads((tmp_path / "r-edge-box.json").read_text())["rows"][0]["latency_ms"]["count"] == 10
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]  # not the progress lines
    assert len(lines) == 2, err
    assert lines[0].startswith("error: dead-box: cannot connect over ssh (") and "refused" in lines[0]
    assert lines[1] == "error: 1 of 2 hosts failed (dead-box); the results of the others were written"
    assert "p50" in stdout and "edge-box" in stdout


def test_adb_timeout_kills_benchmark_model_on_the_phone(fake_adb, own_model, tmp_path, monkeypatch, capsys):
    """FAKE adb (no phone here): it hangs in benchmark_model and logs the kill edgekit sends to the phone."""
    log, _ = fake_adb
    monkeypatch.setenv("FAKE_ADB_HANG", "1")
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF fake")
    code, _, err = run(capsys, "profile", own_model, "--adb", "fake-phone", "--benchmark-binary", binary,
                       "--timeout", 1)
    assert code == 1 and "error: fake-phone: marked-model.tflite: benchmark_model with 1 threads did not finish" in err
    calls = [json.loads(ln) for ln in log.read_text().splitlines()]
    bench = next(c for c in calls if "exec " in c[-1])
    kill = calls[-1]
    assert kill[:3] == ["-s", "fake-phone", "shell"] and kill[3].startswith("kill -9 ")
    assert bench[-1].startswith("echo EDGEKIT-PID $$ >&2; exec ")
    assert wait_for(lambda: not alive("EDGEKIT-PID"), 5)
