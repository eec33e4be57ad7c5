"""JupyterHub's configuration for a room: loaded by the hub that tools/hub/serve.py starts (never run it alone).

Everything room-specific comes from <state>/room.json (written by serve.py; SELFEXTEND_HUB_STATE names the
folder) and the two passwords from the environment (auth.py). Nothing here depends on the machine.
"""
import functools
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from auth import RoomAuthenticator  # noqa: E402
from room import Room  # noqa: E402
from spawner import RoomSpawner, prepare  # noqa: E402

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)


def check_every(limit: int) -> int:
    """How often a culler looks for idle servers or kernels: a quarter of the limit, 5 s to 5 min."""
    return max(5, min(300, limit // 4))


room = Room.load(os.environ["SELFEXTEND_HUB_STATE"])
state, venv_bin = Path(room.state), Path(room.venv) / "bin"

# The hub: public address (the proxy), its own API and the proxy's API on loopback only; state in <state>.
host = f"[{room.ip}]" if ":" in room.ip else room.ip
c.JupyterHub.bind_url = f"{'https' if room.ssl_cert else 'http'}://{host}:{room.port}/"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{room.hub_port}"
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every server; the homes stay
if room.ssl_cert:
    c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key = room.ssl_cert, room.ssl_key
c.ConfigurableHTTPProxy.command = [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{room.proxy_api_port}"

# Sign-in: the roster with the room password, the teacher (admin) with their own.
c.JupyterHub.authenticator_class = RoomAuthenticator
c.RoomAuthenticator.admin_name = room.admin
c.Authenticator.allowed_users = set(room.participants)
c.Authenticator.admin_users = {room.admin}

# Each participant's server: their Unix user, their home, the repository's .venv (kernels import the installed
# selfextend), one memory limit per participant, and few threads so that 30 kernels share the cores fairly.
c.Spawner.cmd = [str(venv_bin / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab/tree/notebooks"
c.Spawner.disable_user_config = True  # a participant's ~/.jupyter cannot reconfigure their server
c.Spawner.mem_limit = room.memory_limit
c.Spawner.start_timeout = 300  # a loaded machine starting 30 servers at once
c.Spawner.http_timeout = 180
c.Spawner.pre_spawn_hook = functools.partial(prepare, room)
threads = str(room.threads)
c.Spawner.environment = {
    "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
    "VIRTUAL_ENV": room.venv,
    "SELFEXTEND_FIGURES": lambda spawner: str(room.homes() / spawner.user.name / "figures"),
    "JUPYTER_RUNTIME_DIR": lambda spawner: str(room.runtime_dir(spawner.user.name)),
    "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
    "JUPYTERHUB_ACTIVITY_INTERVAL": str(min(300, max(5, room.cull_idle // 4 or 300))),
}
# Kernels talk to their server over Unix sockets in the participant's private runtime folder, not over TCP on
# 127.0.0.1, where any participant could subscribe to another's output channel (signed, not encrypted).
if room.model_cache:  # one read-only SmolLM2 file for the room: its pages are mapped once, not copied per kernel
    c.Spawner.environment["SELFEXTEND_CACHE"] = room.model_cache
c.Spawner.args = ["--KernelManager.transport=ipc"] + ([] if room.terminals else ["--ServerApp.terminals_enabled=False"])
# Idle kernels are shut down after room.cull_kernels seconds, open tab or not (jupyter_server's own culling):
# JupyterLab keeps the kernel of every notebook opened running, so without it a participant walking through four
# notebooks holds four kernels (the load test measured 1.3 GB per participant against about 0.6 GB with one).
if room.cull_kernels:
    c.Spawner.args += [f"--MappingKernelManager.cull_idle_timeout={room.cull_kernels}",
                       f"--MappingKernelManager.cull_interval={check_every(room.cull_kernels)}",
                       "--MappingKernelManager.cull_connected=True"]
if room.limits == "systemd":
    c.JupyterHub.spawner_class = "systemdspawner.SystemdSpawner"
    c.SystemdSpawner.username_template = room.user_prefix + "{USERNAME}"
    c.SystemdSpawner.unit_name_template = "selfextend-room-{USERNAME}"
    c.SystemdSpawner.unit_extra_properties = {"MemorySwapMax": "0"}
    c.SystemdSpawner.disable_user_sudo = True
    c.SystemdSpawner.isolate_tmp = True
else:
    c.JupyterHub.spawner_class = RoomSpawner
    c.RoomSpawner.user_prefix = room.user_prefix
    if room.limits == "none":
        c.Spawner.mem_limit = None

# Idle servers are stopped after room.cull_idle seconds (files stay on disk; kernels' variables are lost).
if room.cull_idle:
    every = check_every(room.cull_idle)
    c.JupyterHub.last_activity_interval = every
    c.JupyterHub.services = [{
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={room.cull_idle}",
                    f"--cull-every={every}"],
    }]
    c.JupyterHub.load_roles = [{
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }]
