"""A real two-node Ray cluster on this machine: the demo job on it, and with a worker node killed mid-job."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import FAST, REPO, cli_env
from datakit.verify import verify
from outputs import keys

RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node(args: list[str], tmp: Path, name: str) -> subprocess.Popen:
    """A Ray node in its own process group (``--block`` keeps it in the foreground)."""
    log = open(tmp / f"{name}.log", "w")
    return subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats", *args], env=cli_env(), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_nodes(address: str, n: int, timeout: float = 120) -> None:
    code = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
            "print(sum(1 for x in ray.nodes() if x['Alive']))")
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run([sys.executable, "-c", code, address], env=cli_env(), capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() == str(n):
            return
        time.sleep(1)
    raise AssertionError(f"cluster at {address} did not reach {n} nodes")


def test_cluster_yaml_is_a_valid_ray_launcher_config():
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = prepare_config(yaml.safe_load((REPO / "cluster.yaml").read_text()))
    validate_config(cfg)                        # Ray's own schema, the one `ray up` applies
    assert cfg["provider"]["type"] == "local" and cfg["provider"]["worker_ips"]
    assert any("datakit" in c for c in cfg["setup_commands"])


def _keys(out):
    return keys(out)


@pytest.fixture()
def cluster(tmp_path):
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # the head alone must still fit the demo's actor pool plus a task (1 + 1 CPU) once the worker is gone
    head = _node(["--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                  "--node-ip-address=127.0.0.1"], tmp_path, "head")
    time.sleep(3)
    worker = _node([f"--address={address}", "--num-cpus=1", "--node-ip-address=127.0.0.1"], tmp_path, "worker")
    try:
        _wait_for_nodes(address, 2)
        yield address, worker
    finally:
        for p in (worker, head):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        # `ray start --head` pointed Ray's "current cluster" file at this head: a later plain
        # `ray.init()` on this machine would try to join the dead cluster
        from datakit.rayinit import ray_temp_root

        current = Path(ray_temp_root(), "ray_current_cluster")
        if current.is_file() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()


def _run(address, inp, out, *extra, **kw):
    cmd = [sys.executable, "-m", "datakit.cli", "run", "pipelines/demo.yaml", "--input", str(inp), "--output",
           str(out), "--address", address, "-q", "--set", "shard.max_samples=1", *extra,
           *[a for o in FAST for a in ("--set", o)]]
    return subprocess.Popen(cmd, cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_demo_on_two_nodes_survives_losing_a_worker(cluster, sample_dir, tmp_path, demo_fast_run):
    address, worker = cluster
    clean = demo_fast_run                      # the same job on one local Ray
    assert len(_keys(clean)) >= 8

    faulty = tmp_path / "faulty"
    p = _run(address, sample_dir, faulty)
    deadline = time.time() + 240
    while time.time() < deadline and not list(faulty.glob("manifests/demo-*.parquet")) and p.poll() is None:
        time.sleep(0.05)
    assert p.poll() is None, "the job finished before the worker node could be killed"
    assert list(faulty.glob("manifests/demo-*.parquet")), "no shard was committed in time"
    os.killpg(worker.pid, signal.SIGKILL)        # the worker node, its raylet and its workers
    worker.wait()
    out, err = p.communicate(timeout=400)
    assert p.returncode == 0, err[-3000:]
    keys = _keys(faulty)
    assert keys == _keys(clean) and len(keys) == len(set(keys))
    assert verify(str(faulty)).ok


def _launcher_shell(cmd: str, env: dict, **kw) -> subprocess.CompletedProcess:
    """Run one command of cluster.yaml the way the launcher runs it on a node."""
    from ray.autoscaler._private.command_runner import _with_interactive

    return subprocess.run(" ".join(_with_interactive(cmd)), shell=True, env=env, capture_output=True, text=True,
                          **kw)


@pytest.mark.slow
def test_cluster_yaml_commands_and_the_readme_submit_example_work_on_a_fresh_node(sample_dir, tmp_path):
    """A fresh node: a home holding only the file mount and the venv the setup commands make.
    The head's start commands run as the launcher runs them; then the README's `ray job
    submit` example (its placeholders filled in) runs the demo there. The job only finds
    `datakit` if the PATH that `ray start` had includes the venv."""
    import re

    import yaml
    from ray.autoscaler._private.util import prepare_config

    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("")
    (home / "datakit").symlink_to(REPO)                                  # file_mounts
    (home / "datakit-venv").symlink_to(Path(sys.executable).parent.parent)
    cfg = yaml.safe_load((REPO / "cluster.yaml").read_text())
    assert "~/datakit" in cfg["file_mounts"]
    # what `ray up` writes on the head (here without worker ips: no ssh in a test)
    boot = prepare_config({**cfg, "provider": {**cfg["provider"], "head_ip": "127.0.0.1", "worker_ips": []}})
    (home / "ray_bootstrap_config.yaml").write_text(yaml.safe_dump(boot))
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    installs = ("pip install", "-m venv")      # need the network; the venv stands in for them
    for cmd in cfg["setup_commands"]:
        if not any(s in cmd for s in installs):
            r = _launcher_shell(cmd, env)
            assert r.returncode == 0, (cmd, r.stderr[-2000:])
    port, dash = _free_port(), _free_port()
    # a Ray of its own (`ray stop` as written would stop every Ray on this machine: it is only
    # checked to be found; the head is stopped by its temp dir at the end)
    ray_tmp = tempfile.mkdtemp(prefix="dkray", dir="/tmp")
    try:
        for cmd in cfg["head_start_ray_commands"]:
            if cmd.split()[-1] == "stop":
                cmd += " --help"
            cmd = cmd.replace("--port=6379", f"--port={port}").replace("--dashboard-port=8265", f"--dashboard-port={dash}")
            # ports of its own: another Ray on this machine (the tests' own) holds the default ones
            cmd = cmd.replace("--dashboard-host=0.0.0.0", "--dashboard-host=127.0.0.1 --node-ip-address=127.0.0.1 "
                              f"--num-cpus=2 --disable-usage-stats --temp-dir={ray_tmp} "
                              f"--dashboard-agent-listen-port={_free_port()}")
            r = _launcher_shell(cmd, env, timeout=180)
            assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-2000:])
        readme = (REPO / "README.md").read_text()
        submit = re.search(r"^ray job submit .*?\n.*?$", readme, re.M).group(0).replace("\\\n", " ")
        assert submit.split() == (cfg_comment := [w for w in re.search(
            r"#\s+(ray job submit .*?)\n#\s+(datakit run .*?)\n", (REPO / "cluster.yaml").read_text()).groups()
            for w in w.replace("\\", "").split()]), f"README and cluster.yaml differ: {cfg_comment}"
        out = tmp_path / "out"
        submit = (submit.replace("HEAD_IP:8265", f"127.0.0.1:{dash}").replace("pipelines/t2v.yaml", "pipelines/demo.yaml")
                  .replace("s3://bucket/raw", str(sample_dir)).replace("s3://bucket/t2v", str(out)))
        assert submit.startswith("ray job submit") and "datakit run" in submit
        job_env = {**cli_env(), "PATH": f"{Path(RAY).parent}:/usr/bin:/bin"}
        deadline = time.time() + 120
        while True:            # the head's job agent comes up a little after `ray start` returns
            r = subprocess.run(submit + " --limit 1 -q --set synthetic.profile=bicubic", shell=True, cwd=REPO,
                               env=job_env, capture_output=True, text=True, timeout=400)
            if "No available agent" not in r.stderr or time.time() > deadline:
                break
            time.sleep(2)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert verify(str(out)).ok and _keys(out)
    finally:
        subprocess.run(["pkill", "-KILL", "-f", ray_tmp], check=False)
        shutil.rmtree(ray_tmp, ignore_errors=True)
