"""The room server (tools/hub): settings and sign-in checks, then a real JupyterHub on 127.0.0.1.

The first tests need nothing but the package (parsing, the authenticator, the generated configuration, the
limit detection on a fake /sys). The rest start tools/hub/serve.py for real (tests/hub_room.py: root, cgroup v1,
npm) with participants alice, bob and carol and check, in this order: refused sign-ins look alike; each
participant gets a private copy; one participant cannot reach another through the hub's API, a kernel or a
terminal; a runaway allocation is stopped by the memory limit without touching the others; killing a kernel
or a whole server leaves the others working; released solutions arrive; a hub restart keeps saved notebooks;
an idle kernel is shut down even with its tab open; an idle server is culled and its saved work survives. Last,
a small load test (tools/hub/loadtest.py: two participants, three cells of notebook 01) runs through a room of
its own, and one stopped by SIGTERM closes its room.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from matplotlib.figure import Figure
from traitlets.config import Config

if sys.platform == "win32":  # Unix accounts and permissions: the room server runs on Linux
    pytest.skip("the room server runs on Linux", allow_module_level=True)

from hub_room import HUB, Hub, check_requirements, healthy, wait_until

import auth  # noqa: E402  (tools/hub is on sys.path through hub_room)
import limits  # noqa: E402
import ports  # noqa: E402
import loadtest  # noqa: E402
from room import Room, RoomError, parse_duration, parse_names, parse_size  # noqa: E402

NOTEBOOK = "notebooks/01_rope_relative_positions.ipynb"
LEARNER = sorted(p.name for p in (HUB.parents[1] / "notebooks").glob("[0-9]*.ipynb"))


# ----- without a hub -------------------------------------------------------------------------------------------


def test_roster_sizes_and_durations():
    assert parse_names("Alice\nbob, carol  # the back row\n\n# nobody\n") == ["alice", "bob", "carol"]
    for bad in ("al ice", "1alice", "a" * 21, "alice\nalice", "../x"):
        with pytest.raises(RoomError):
            parse_names(bad)
    assert parse_size("2G") == 2 << 30 and parse_size("1536M") == 1536 << 20 and parse_size("none") is None
    with pytest.raises(RoomError):
        parse_size("100M")  # below what JupyterLab alone needs
    assert parse_duration("90m") == 5400 and parse_duration("2h") == 7200 and parse_duration("45") == 2700
    assert parse_duration("0") == 0


@pytest.mark.parametrize("args,needle", [
    ([], "no participants"),
    (["--participants", "al ice"], "participant name"),
    (["--participants", "alice", "--admin", "alice"], "also in the roster"),
    (["--participants", "alice", "--memory-limit", "lots"], "memory limit"),
    (["--participants", "alice", "--ip", "my-laptop"], "not an IP address"),
    (["--participants", "alice", "--cull-idle", "soon"], "--cull-idle 'soon'"),
    (["--participants", "alice", "--cull-kernels", "5min"], "--cull-kernels '5min'"),
    (["--participants", "alice", "--threads", "zero"], "--threads"),
    (["--participants", "alice", "--ssl-cert", "x.pem"], "go together"),
    (["--nonsense"], "unrecognized arguments"),
])
def test_serve_refuses_bad_input_in_one_line(args, needle):
    run = subprocess.run([sys.executable, str(HUB / "serve.py"), *args], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 2 and run.stdout == "", run
    assert len(run.stderr.strip().splitlines()) == 1 and needle in run.stderr, run.stderr


def test_the_authenticator_refuses_every_way_alike(monkeypatch):
    """Unknown name, wrong password, the room password for the teacher: None; compared with compare_digest."""
    monkeypatch.setenv(auth.ROOM_PASSWORD, "room password")
    monkeypatch.setenv(auth.ADMIN_PASSWORD, "teacher password")
    monkeypatch.setattr(auth, "REFUSED_DELAY", 0)
    compared = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: compared.append(len(a)) or real(a, b))
    authenticator = auth.RoomAuthenticator(allowed_users={"alice", "bob"}, admin_name="teacher")
    assert auth.ROOM_PASSWORD not in os.environ  # taken out of the environment

    def attempt(name, password):
        return asyncio.run(authenticator.authenticate(None, {"username": name, "password": password}))

    assert attempt("alice", "room password") == "alice" and attempt(" Bob ", "room password") == "bob"
    assert attempt("teacher", "teacher password") == "teacher"
    assert attempt("alice", "room passwor") is None and attempt("mallory", "room password") is None
    assert attempt("teacher", "room password") is None and attempt("alice", "teacher password") is None
    assert attempt("alice", "") is None
    assert len(compared) == 8 and set(compared) == {32}  # every attempt: one HMAC-SHA256 comparison


def load_config(room: Room, monkeypatch) -> Config:
    """What JupyterHub reads from tools/hub/jupyterhub_config.py for ROOM."""
    room.save()
    monkeypatch.setenv("SELFEXTEND_HUB_STATE", room.state)
    config = Config()
    code = compile((HUB / "jupyterhub_config.py").read_text(), "jupyterhub_config.py", "exec")
    exec(code, {"get_config": lambda: config, "__file__": str(HUB / "jupyterhub_config.py")})
    return config


def test_the_configuration_wires_the_room(tmp_path, monkeypatch):
    room = Room(participants=["alice", "bob"], state=str(tmp_path), memory_limit=3 << 30, cull_idle=1800, threads=2,
                terminals=False, ip="0.0.0.0", port=9000)
    c = load_config(room, monkeypatch)
    assert c.JupyterHub.bind_url == "http://0.0.0.0:9000/" and c.JupyterHub.hub_bind_url.startswith("http://127.0.0.1:")
    assert c.JupyterHub.authenticator_class.__name__ == "RoomAuthenticator"
    assert c.Authenticator.allowed_users == {"alice", "bob"} and c.Authenticator.admin_users == {"teacher"}
    assert c.JupyterHub.spawner_class.__name__ == "RoomSpawner" and c.Spawner.mem_limit == 3 << 30
    assert c.Spawner.cmd == [str(Path(room.venv) / "bin" / "jupyterhub-singleuser")]
    assert "--KernelManager.transport=ipc" in c.Spawner.args and "--ServerApp.terminals_enabled=False" in c.Spawner.args
    assert c.Spawner.environment["OMP_NUM_THREADS"] == "2" and c.Spawner.disable_user_config
    assert c.ConfigurableHTTPProxy.command[0].endswith("node_modules/.bin/configurable-http-proxy")
    (culler,) = c.JupyterHub.services
    assert "--timeout=1800" in culler["command"] and culler["command"][1:3] == ["-m", "jupyterhub_idle_culler"]
    assert "delete:servers" in c.JupyterHub.load_roles[0]["scopes"]
    assert {"--MappingKernelManager.cull_idle_timeout=1800", "--MappingKernelManager.cull_interval=300",
            "--MappingKernelManager.cull_connected=True"} <= set(c.Spawner.args)  # the default 30 min
    # on a systemd server the same room runs under systemd's MemoryMax instead
    room.limits, room.cull_idle, room.cull_kernels = "systemd", 0, 0
    c = load_config(room, monkeypatch)
    assert not any("cull" in arg for arg in c.Spawner.args)
    assert c.JupyterHub.spawner_class == "systemdspawner.SystemdSpawner" and c.Spawner.mem_limit == 3 << 30
    assert c.SystemdSpawner.username_template == "room-{USERNAME}"
    assert c.SystemdSpawner.unit_extra_properties == {"MemorySwapMax": "0"} and "services" not in c.JupyterHub


def fake_machine(tmp_path: Path, init: str, v1: bool, v2: bool) -> tuple[Path, Path]:
    """A /sys/fs/cgroup and /proc with just what detect() reads."""
    fs, proc = tmp_path / "cgroup", tmp_path / "proc"
    (proc / "1").mkdir(parents=True)
    (proc / "1" / "comm").write_text(init + "\n")
    (proc / "self").mkdir()
    (proc / "self" / "cgroup").write_text("4:memory:/ci/job\n0::/\n")
    fs.mkdir()
    if v1:
        (fs / "memory").mkdir()
        (fs / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    if v2:
        (fs / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    return fs, proc


def test_limit_mechanism_is_detected(tmp_path):
    assert limits.detect(*fake_machine(tmp_path / "a", "systemd", v1=False, v2=True)) == "systemd"
    assert limits.detect(*fake_machine(tmp_path / "b", "process_api", v1=True, v2=False)) == "cgroup-v1"
    fs, proc = fake_machine(tmp_path / "c", "tini", v1=False, v2=True)
    assert limits.detect(fs, proc) is None and "cgroup v2 without systemd" in limits.why_not(fs, proc)
    with pytest.raises(limits.LimitError, match="needs systemd"):
        limits.check("systemd", fs, proc)
    group = limits.Cgroup.for_user("room-alice", *fake_machine(tmp_path / "d", "sh", v1=True, v2=False))
    assert group.path.parts[-4:] == ("ci", "job", "selfextend-hub", "room-alice")


def test_a_limit_never_leaves_swap_below_memory(tmp_path, monkeypatch):
    """memory.memsw.limit_in_bytes >= memory.limit_in_bytes after every write (the kernel refuses otherwise)."""
    group = limits.Cgroup(tmp_path / "g")
    group.path.mkdir()
    for file in ("memory.memsw.limit_in_bytes", "memory.limit_in_bytes"):
        (group.path / file).write_text("9223372036854771712")
    original = Path.write_text

    def checked(path, text, *args, **kwargs):
        written = original(path, text, *args, **kwargs)
        assert group.read("memory.memsw.limit_in_bytes") >= group.read("memory.limit_in_bytes"), path.name
        return written

    monkeypatch.setattr(limits.Path, "write_text", checked)
    for size in (1 << 30, 3 << 30, 2 << 30):  # set, grow, shrink
        group.create(size)
        assert group.read("memory.limit_in_bytes") == group.read("memory.memsw.limit_in_bytes") == size


def test_a_server_port_is_free_and_outside_the_range_of_outgoing_connections(tmp_path):
    """ports.pick: never a port the kernel may give an outgoing connection, one already given, or one in use."""
    import random
    import socket

    linux = tmp_path / "range"
    linux.write_text("21000\t60999\n")  # pool 20000-20999
    assert ports.ephemeral_range(linux) == (21000, 60999)
    assert ports.candidates(linux) == range(20000, 21000)
    (tmp_path / "low").write_text("1024 65000")  # a range that starts low: the ports above it
    assert ports.candidates(tmp_path / "low") == range(65001, 65536)
    assert ports.ephemeral_range(tmp_path / "missing") == (32768, 60999)
    busy_port = next(p for p in range(20000, 21000) if ports.is_free(p))
    with socket.socket() as busy:  # a listening socket on one pool port, one other port left free
        busy.bind(("127.0.0.1", busy_port))
        busy.listen()
        free_port = next(p for p in range(20000, 21000) if p != busy_port and ports.is_free(p))
        taken = set(range(20000, 21000)) - {busy_port, free_port}
        for seed in range(5):
            assert ports.pick(taken, path=linux, rng=random.Random(seed)) == free_port
        with pytest.raises(RuntimeError, match="no free port in 20000-20999"):
            ports.pick(taken | {free_port}, path=linux)
    given: set[int] = set()
    for _ in range(50):  # a room starting at once gets 50 distinct ports of the pool
        given.add(ports.pick(given, path=linux))
    assert len(given) == 50 and given <= set(range(20000, 21000))


def test_a_failed_participant_keeps_the_hubs_warnings_and_errors_about_them():
    """Hub.log_about: what the load test records for a participant who failed (the log goes with the room)."""
    import shutil

    room = Hub(["alice", "bob"])
    try:
        (room.state / "jupyterhub.log").write_text(
            "[I 12:00 JupyterHub] alice signed in\n"
            "[E 12:01 JupyterHub user:1] Unhandled error starting alice's server: port in use\n"
            "[W 12:02 JupyterHub base:2] bob is slow\n"
            "[W 12:03 JupyterHub base:2] alice's server never showed up\n")
        assert room.log_about("alice") == [
            "[E 12:01 JupyterHub user:1] Unhandled error starting alice's server: port in use",
            "[W 12:03 JupyterHub base:2] alice's server never showed up"]
        assert room.log_about("alice", last=1) == ["[W 12:03 JupyterHub base:2] alice's server never showed up"]
        assert room.log_about("carol") == []
    finally:
        shutil.rmtree(room.state)
    assert room.log_about("alice") == []  # no log: nothing, not an error


def test_load_test_summaries_resume_and_figure(tmp_path):
    assert loadtest.summary([3.0, 1.0, 2.0, 10.0]) == {"count": 4, "p50": 2.0, "p95": 10.0, "max": 10.0, "mean": 4.0}
    assert loadtest.summary([]) == {"count": 0}
    out = tmp_path / "load.json"
    out.write_text(json.dumps({"settings": {"think_seconds": 3}, "runs": {"5": {}}}))
    assert loadtest.load_results(out, {"think_seconds": 3}, fresh=False)["runs"] == {"5": {}}  # resumed
    assert loadtest.load_results(out, {"think_seconds": 9}, fresh=True)["runs"] == {}
    with pytest.raises(ValueError, match="other settings"):
        loadtest.load_results(out, {"think_seconds": 9}, fresh=False)
    run = {"spawn_seconds": {"p50": 4, "p95": 6, "max": 7}, "cell_seconds": {"p50": 0.1, "p95": 3, "max": 9},
           "memory_mib": {"per_participant_peak": {"p50": 900, "max": 1200}, "machine_peak_above_baseline": 5000}}
    results = {"runs": {str(k): {**run, "k": k} for k in (10, 5)}, "machine": {"cpus": 16, "memory_gib": 64}}
    from selfextend.viz import plot_hub_load
    figure = plot_hub_load(results)
    assert isinstance(figure, Figure) and len(figure.axes) == 3 and "16 CPU cores" in figure._suptitle.get_text()
    assert list(figure.axes[0].lines[0].get_xdata()) == [5, 10]
    for kernels, words in ((loadtest.KERNELS["one"], "one kernel at a time"),
                           (loadtest.KERNELS["kept"], "every kernel kept running")):
        titled = plot_hub_load({**results, "settings": {"notebooks": ["01"], "kernels": kernels}})
        assert titled._suptitle.get_text().endswith(words)
    with pytest.raises(ValueError):
        plot_hub_load({"runs": {}})


def test_load_test_refuses_bad_input_in_one_line():
    run = subprocess.run([sys.executable, str(HUB / "loadtest.py"), "--k", "5", "5"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "distinct" in run.stderr


# ----- a real hub ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub():
    """A room of alice, bob and carol (1 GiB each), started by serve.py; removed at the end."""
    check_requirements()
    room = Hub(["alice", "bob", "carol"], memory_limit="1G")
    try:
        room.open_the_way()
        seconds = room.start()
        print(f"\nroom started in {seconds:.1f} s at {room.url}")
        yield room
    finally:
        room.close()


@pytest.fixture(scope="module")
def alice(hub):
    person = hub.signed_in("alice")
    print(f"\nalice's server started in {person.start_server():.1f} s")
    return person


@pytest.fixture(scope="module")
def bob(hub):
    person = hub.signed_in("bob")
    print(f"\nbob's server started in {person.start_server():.1f} s")
    return person


def login_form(hub: Hub, name: str, password: str) -> requests.Response:
    """Sign in through the login page as a browser does (xsrf token from the form)."""
    session = requests.Session()
    page = session.get(f"{hub.url}/hub/login", timeout=60)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    return session.post(f"{hub.url}/hub/login", data={"username": name, "password": password, "_xsrf": xsrf},
                        allow_redirects=False, timeout=60)


def test_wrong_password_and_unknown_name_are_refused_alike(hub):
    refused = {
        "wrong password": login_form(hub, "alice", hub.password + "x"),
        "unknown name": login_form(hub, "mallory", hub.password),
        "room password as the teacher": login_form(hub, "teacher", hub.password),
        "the teacher's password for a participant": login_form(hub, "alice", hub.admin_password),
    }
    pages = {}
    for why, answer in refused.items():
        assert answer.status_code == 403, (why, answer.status_code)
        assert "Invalid username or password" in answer.text, why
        pages[why] = re.sub(r'(value="|xsrf_token: ")[^"]*"', "", answer.text)  # the xsrf token, the name typed
    assert len(set(pages.values())) == 1, "the refusals differ in more than the typed name"
    api = [hub.participant(name, password).request(
        "POST", f"{hub.url}/hub/api/users/{name}/tokens", expect=None,
        json={"auth": {"username": name, "password": password}})
        for name, password in [("alice", "wrong-password"), ("mallory", hub.password)]]
    assert [a.status_code for a in api] == [403, 403] and api[0].text == api[1].text
    assert login_form(hub, "alice", hub.password).status_code == 302  # the right pair gets in


def test_each_participant_gets_a_private_copy(hub, alice, bob):
    import pwd  # Unix only: imported here so that the module imports anywhere

    listing = alice.contents("notebooks").json()["content"]
    assert sorted(item["name"] for item in listing if item["type"] == "notebook") == LEARNER
    assert not any(item["name"] == "solutions" for item in listing)  # not released
    room = hub.room
    for person in (alice, bob):
        home = room.homes() / person.name
        entry = pwd.getpwnam(room.system_user(person.name))
        assert home.stat().st_uid == entry.pw_uid and home.stat().st_mode & 0o777 == 0o700
        assert entry.pw_uid >= 1000 and entry.pw_uid != 0
    assert (room.homes() / "alice").stat().st_uid != (room.homes() / "bob").stat().st_uid


def test_servers_listen_below_the_range_of_outgoing_connections(hub, alice, bob):
    """Each server got its own port outside the kernel's range for outgoing connections (tools/hub/ports.py)."""
    log = hub.hub_log(tail=None)  # the hub logs each route it gives the proxy
    given = dict(re.findall(r"Adding user (alice|bob) to proxy /user/\1/ => http://127\.0\.0\.1:(\d+)", log))
    low, high = ports.ephemeral_range()
    assert set(given) == {"alice", "bob"} and given["alice"] != given["bob"], given
    assert all(not low <= int(port) <= high for port in given.values()), (given, low, high)


def test_a_participant_cannot_reach_another_through_the_hub(hub, alice, bob):
    assert alice.contents(NOTEBOOK, owner="bob", expect=None).status_code == 403
    assert alice.request("GET", f"{hub.url}/user/bob/api/kernels", expect=None).status_code == 403
    assert alice.request("GET", f"{hub.url}/hub/api/users/bob", expect=None).status_code in (403, 404)
    assert alice.request("POST", f"{hub.url}/hub/api/users/bob/tokens", expect=None, json={}).status_code in (403, 404)
    assert alice.request("DELETE", f"{hub.url}/hub/api/users/bob/server", expect=None).status_code in (403, 404)
    assert bob.server() is not None  # still running
    assert alice.request("GET", f"{hub.url}/hub/api/users", expect=None).status_code == 403


def test_a_participant_cannot_reach_another_from_a_kernel_or_a_terminal(hub, alice, bob):
    bob_home = hub.room.homes() / "bob"
    bob_server = next(iter(limits.Cgroup.for_user(hub.room.system_user("bob")).pids()))
    probe = f"""
import os
for what, action in [("read", lambda: open({str(bob_home / NOTEBOOK)!r}).read()),
                     ("list", lambda: os.listdir({str(bob_home)!r})),
                     ("write", lambda: open({str(bob_home / 'x.txt')!r}, 'w')),
                     ("signal", lambda: os.kill({bob_server}, 0)),
                     ("sockets", lambda: os.listdir({str(hub.room.runtime_dir("bob"))!r}))]:
    try:
        action()
        print(what, "ALLOWED")
    except PermissionError:
        print(what, "denied")
"""
    with alice.kernel("notebooks/probe.ipynb") as kernel:
        result = kernel.execute(probe)
    assert result.status == "ok", result
    assert result.text.split() == ["read", "denied", "list", "denied", "write", "denied", "signal", "denied",
                                   "sockets", "denied"]
    said = alice.terminal(f"cat {bob_home / NOTEBOOK} | head -c 20; ls {bob_home}; id -un")
    assert said.count("Permission denied") == 2 and hub.room.system_user("alice") in said, said
    assert '"cells"' not in said


def kernel_pids(hub: Hub, name: str) -> list[int]:
    """The ipykernel processes in a participant's cgroup."""
    found = []
    for pid in limits.Cgroup.for_user(hub.room.system_user(name)).pids():
        try:
            if b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


def test_a_runaway_cell_is_stopped_by_the_memory_limit_alone(hub, alice, bob):
    group = limits.Cgroup.for_user(hub.room.system_user("alice"))
    assert group.read("memory.limit_in_bytes") == 1 << 30
    kills = group.oom_kills()
    with bob.kernel("notebooks/steady.ipynb") as bobs:
        assert bobs.execute("total = sum(range(10**6)); print(total)").text.strip() == "499999500000"
        with alice.kernel("notebooks/runaway.ipynb") as runaway:
            result = runaway.execute("x = []\nwhile True:\n    x.append(bytearray(b'1') * (64 << 20))", timeout=300)
        assert result.status == "died", result
        assert group.oom_kills() > kills
        assert bobs.execute("print(total + 1)").text.strip() == "499999500001"  # bob's kernel kept its state
    assert alice.request("GET", f"{alice.server_url}/api/status").status_code == 200
    with alice.kernel("notebooks/fresh.ipynb") as fresh:
        assert fresh.execute("print('alive')").text.strip() == "alive"
    assert healthy(hub.url)


def test_a_cell_past_its_time_limit_is_a_timeout_at_the_limit(bob):
    """The load test's client: a deadline fires on time even though recv() would wait for the next message."""
    with bob.kernel("notebooks/slow.ipynb") as kernel:
        start = time.monotonic()
        result = kernel.execute("import time; time.sleep(40)", timeout=4)
        assert result.status == "timeout" and time.monotonic() - start < 10, result


def test_killing_a_kernel_or_a_server_leaves_the_others_working(hub, alice, bob):
    saved = {"type": "file", "format": "text", "content": "kept\n"}
    alice.save("kept.txt", saved)
    with alice.kernel("notebooks/doomed.ipynb") as doomed, bob.kernel("notebooks/steady.ipynb") as bobs:
        doomed.execute("import os")
        for pid in kernel_pids(hub, "alice"):
            os.kill(pid, signal.SIGKILL)
        assert bobs.execute("print(6 * 7)").text.strip() == "42"
        assert alice.request("GET", f"{alice.server_url}/api/status").status_code == 200
        # now the whole server of alice
        server = [pid for pid in limits.Cgroup.for_user(hub.room.system_user("alice")).pids()
                  if b"jupyterhub-singleuser" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(server) == 1
        os.kill(server[0], signal.SIGKILL)
        assert bobs.execute("print(6 * 8)").text.strip() == "48"
    wait_until(lambda: alice.server() is None, 120, "the hub noticing alice's server is gone", every=2)
    wait_until(lambda: not limits.Cgroup.for_user(hub.room.system_user("alice")).pids(), 60,
               "alice's orphaned kernels being killed")
    assert bob.request("GET", f"{bob.server_url}/api/status").status_code == 200
    print(f"\nalice's server restarted in {alice.start_server():.1f} s")
    assert alice.contents("kept.txt").json()["content"] == "kept\n"


def test_released_solutions_reach_every_home_and_never_follow_a_participants_link(hub, alice):
    release = [sys.executable, str(HUB / "admin.py"), "release-solutions", "--state", str(hub.state)]
    with alice.kernel("notebooks/link.ipynb") as kernel:  # alice points notebooks/solutions at /etc before the release
        link = "import os; os.symlink('/etc', os.path.expanduser('~/notebooks/solutions'))"
        assert kernel.execute(link).status == "ok"
    etc = (Path("/etc").stat().st_uid, sorted(p.name for p in Path("/etc").iterdir()))
    run = subprocess.run(release, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "alice" in run.stderr, run  # copied as alice: /etc is not hers to write
    assert (Path("/etc").stat().st_uid, sorted(p.name for p in Path("/etc").iterdir())) == etc
    with alice.kernel("notebooks/unlink.ipynb") as kernel:
        assert kernel.execute("import os; os.remove(os.path.expanduser('~/notebooks/solutions'))").status == "ok"
    run = subprocess.run(release, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    names = {item["name"] for item in alice.contents("notebooks/solutions").json()["content"]}
    assert names == {p.name for p in (HUB.parents[1] / "notebooks" / "solutions").glob("[0-9]*.ipynb")}


def test_a_hub_restart_keeps_every_saved_notebook(hub, alice, bob):
    notebook = alice.contents(NOTEBOOK).json()
    first = notebook["content"]["cells"][0]
    first["source"] = "# alice's own notes\n" + "".join(first["source"])
    alice.save(NOTEBOOK, {"type": "notebook", "format": "json", "content": notebook["content"]})
    bob.save("bob.txt", {"type": "file", "format": "text", "content": "bob's\n"})
    print(f"\nhub restarted in {hub.restart():.1f} s")
    again, bob_again = hub.signed_in("alice"), hub.signed_in("bob")
    assert again.server() is None  # every server stopped with the hub
    again.start_server()
    bob_again.start_server()
    cells = again.contents(NOTEBOOK).json()["content"]["cells"]
    assert "".join(cells[0]["source"]).startswith("# alice's own notes")
    assert bob_again.contents("bob.txt").json()["content"] == "bob's\n"
    assert "alice's own notes" not in json.dumps(bob_again.contents(NOTEBOOK).json()["content"]["cells"][0])


def test_an_idle_kernel_is_shut_down_with_its_tab_open_and_the_server_stays(hub):
    """--cull-kernels 15s: a kernel with a connected websocket, idle, is shut down; the server and files stay."""
    hub.restart(extra=("--cull-kernels", "15s"))
    alice = hub.signed_in("alice")
    alice.start_server()
    alice.save("kept.txt", {"type": "file", "format": "text", "content": "kept\n"})
    with alice.kernel(NOTEBOOK) as kernel:
        assert kernel.execute("x = 1").status == "ok"
        kernels = lambda: alice.request("GET", f"{alice.server_url}/api/kernels").json()  # noqa: E731
        assert len(kernels()) == 1
        start = time.monotonic()
        wait_until(lambda: kernels() == [], 120, "culling alice's idle kernel", every=2)
        print(f"\nalice's idle kernel shut down after {time.monotonic() - start:.0f} s (limit 15 s), tab still open")
    assert alice.server() is not None and alice.contents("kept.txt").json()["content"] == "kept\n"


def test_an_idle_server_is_culled_and_keeps_its_saved_work(hub):
    """The last test: the room restarts with a 20-second idle limit."""
    hub.restart(cull_idle="20s")
    carol = hub.signed_in("carol")
    carol.start_server()
    carol.save("notes.txt", {"type": "file", "format": "text", "content": "saved before the break\n"})
    start = time.monotonic()
    wait_until(lambda: carol.server() is None, 180, "culling carol's idle server", every=2)
    print(f"\ncarol's idle server culled after {time.monotonic() - start:.0f} s (limit 20 s)")
    assert "culling" in hub.hub_log().lower() or "idle" in hub.hub_log().lower()
    carol.start_server()
    assert carol.contents("notes.txt").json()["content"] == "saved before the break\n"


def test_a_small_load_test_runs_through_a_real_room(tmp_path):
    """make test's version of make hub-load-test: 2 participants, 3 cells of notebook 01, no think time."""
    check_requirements()
    out = tmp_path / "hub_load_test.json"
    assert loadtest.main(["--k", "2", "--notebooks", "01", "--max-cells", "3", "--think", "0", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    run = results["runs"]["2"]
    assert results["complete"] and results["versions"]["jupyterhub"] == "6.1.1"
    assert run["cells_ok"] == 6 and run["kernels_died"] == 0 and run["cells_error"] == 0, run["problems"]
    assert run["spawn_seconds"]["count"] == 2 and run["memory_mib"]["per_participant_peak"]["p50"] > 100
    assert (tmp_path / "hub_load_test.png").is_file() and (tmp_path / "hub_load_test.svg").is_file()
    print(f"\nsmall load test: spawn p50 {run['spawn_seconds']['p50']} s, cells p95 {run['cell_seconds']['p95']} s, "
          f"peak {run['memory_mib']['per_participant_peak']['max']} MiB per participant")


def test_a_load_test_stopped_by_sigterm_closes_its_room(tmp_path):
    """SIGTERM mid-run (as `kill` of a load test under nohup): exit 130, no JSON, no account or state folder left."""
    check_requirements()
    import tempfile

    def leftovers() -> tuple[set, set]:
        accounts = {line.split(":")[0] for line in Path("/etc/passwd").read_text().splitlines()}
        rooms = set(Path(tempfile.gettempdir()).glob("selfextend-room-*"))
        return accounts, rooms

    before = leftovers()
    out = tmp_path / "stopped.json"
    log = tmp_path / "loadtest.log"
    with open(log, "w") as sink:
        process = subprocess.Popen([sys.executable, str(HUB / "loadtest.py"), "--k", "1", "--notebooks", "01",
                                    "--think", "600", "--out", str(out)], stdout=sink, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: "k=1" in log.read_text() or process.poll() is not None, 300, "the load test's first room")
        time.sleep(15)  # the participant signs in, starts a server and waits before its first cell
        assert process.poll() is None, log.read_text()
        assert leftovers() != before  # the room exists: its account and state folder
        process.send_signal(signal.SIGTERM)
        assert process.wait(180) == 130, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert "stopped by SIGTERM" in log.read_text() and not out.exists()
    assert leftovers() == before
