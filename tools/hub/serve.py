"""Serve the notebooks to a room: JupyterHub for participants who only have a browser (`make hub`).

    sudo .venv/bin/python tools/hub/serve.py --roster names.txt                 # try it out on 127.0.0.1:8000
    sudo .venv/bin/python tools/hub/serve.py --roster names.txt --ip 0.0.0.0    # the room: every address
    sudo make hub HUB_ARGS="--roster names.txt --ip 192.168.1.20 --memory-limit 3G --cull-idle 90m"

Participants sign in with their name from the roster and the room password; the teacher signs in as
--admin (default: teacher) with a password of their own and is the hub's admin. The passwords come from
SELFEXTEND_HUB_PASSWORD and SELFEXTEND_HUB_ADMIN_PASSWORD, or are asked for; they are never written
to disk. Each participant gets an unprivileged Unix user and a private home with their own copy of the
learner notebooks (kept across restarts; the solutions once `tools/hub/admin.py release-solutions`).
Needs Linux and root (it creates those users). Anything it cannot do as asked: one line, exit code 2.
"""
from __future__ import annotations

import argparse
import getpass
import os
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import limits  # noqa: E402
from auth import ADMIN_PASSWORD, ROOM_PASSWORD  # noqa: E402
from ports import is_free, pick  # noqa: E402
from room import (NAME, PREFIX, ROOT, OneLineParser, Room, RoomError, check_address, is_public, parse_duration,  # noqa: E402
                  parse_names, parse_size)

MIN_PASSWORD = 8
PROXY = HERE / "node_modules" / ".bin" / "configurable-http-proxy"
LOG = "jupyterhub.log"  # inside the state folder


def refuse(message: str) -> None:
    """Stop before starting anything: one line, exit code 2."""
    print(f"serve.py: {message}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The teacher's options."""
    parser = OneLineParser(prog="serve.py", description=__doc__.splitlines()[0])
    parser.add_argument("--roster", type=Path, help="file of sign-in names, one a line (# comments)")
    parser.add_argument("--participants", default="",
                        help="sign-in names, comma-separated (with or instead of --roster)")
    parser.add_argument("--admin", default="teacher", help="the teacher's sign-in name (default: teacher)")
    parser.add_argument("--ip", default="127.0.0.1", help="address to listen on: 127.0.0.1 (default, this machine "
                        "only), the machine's LAN address, or 0.0.0.0 (every address)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument("--state", type=Path, default=ROOT / "hub-state",
                        help="folder for the hub's database and the participants' homes (default: hub-state/)")
    parser.add_argument("--memory-limit", default="2G", help="memory per participant, all their kernels together "
                        "(default 2G; `none` for no limit)")
    parser.add_argument("--limits", choices=["auto", "cgroup-v1", "systemd"], default="auto",
                        help="how the memory limit is enforced (default auto: systemd when it is init, else cgroup v1)")
    parser.add_argument("--cull-idle", default="60m", help="stop a server idle this long (default 60m; 0: never)")
    parser.add_argument("--cull-kernels", default="30m", help="shut down a kernel idle this long, even with its tab "
                        "open (default 30m; 0: never): a participant's memory is then about one kernel, not one "
                        "per notebook opened")
    parser.add_argument("--threads", default="auto", help="threads per kernel (default: CPU cores / participants)")
    parser.add_argument("--no-terminals", action="store_true", help="no terminals in JupyterLab")
    parser.add_argument("--share-smollm2", action="store_true",
                        help="half-day track: dequantize SmolLM2 once into <state>/shared, read by every participant")
    parser.add_argument("--user-prefix", default="room-", help="Unix account of participant NAME: PREFIX+NAME")
    parser.add_argument("--ssl-cert", type=Path, help="TLS certificate (with --ssl-key): serve https directly")
    parser.add_argument("--ssl-key", type=Path, help="TLS private key")
    return parser.parse_args(argv)


def build_room(options: argparse.Namespace) -> Room:
    """Check every option and turn them into the room's settings (RoomError: one line for the teacher)."""
    text = options.participants.replace(",", "\n")
    if options.roster:
        try:
            text += "\n" + options.roster.read_text(encoding="utf-8")
        except OSError as error:
            raise RoomError(f"cannot read the roster {options.roster}: {error.strerror}")
    participants = parse_names(text)
    if not participants:
        raise RoomError("no participants: give --roster FILE (one name a line) or --participants alice,bob")
    admin = options.admin.strip().lower()
    if not NAME.fullmatch(admin):
        raise RoomError(f"--admin {options.admin!r}: use 1-20 of a-z, 0-9, - and _, starting with a letter")
    if admin in participants:
        raise RoomError(f"the teacher's name {admin!r} is also in the roster; give them another --admin name")
    if not PREFIX.fullmatch(options.user_prefix):
        raise RoomError(f"--user-prefix {options.user_prefix!r}: use 1-12 of a-z, 0-9, - and _, starting with a letter")
    if not 1 <= options.port <= 65535:
        raise RoomError(f"--port {options.port} is not a port number")
    memory = parse_size(options.memory_limit)
    mechanism = "none" if memory is None else options.limits
    if mechanism == "auto":
        mechanism = limits.detect()
        if mechanism is None:
            raise RoomError(f"cannot limit memory per participant: {limits.why_not()} "
                            "(start with --memory-limit none to run without a limit)")
    threads = max(1, (os.cpu_count() or 1) // len(participants)) if options.threads == "auto" else options.threads
    try:
        threads = int(threads)
        assert threads >= 1
    except (ValueError, AssertionError):
        raise RoomError(f"--threads {options.threads!r}: a whole number of at least 1, or auto")
    if bool(options.ssl_cert) != bool(options.ssl_key):
        raise RoomError("--ssl-cert and --ssl-key go together")
    for path in (options.ssl_cert, options.ssl_key):
        if path and not path.is_file():
            raise RoomError(f"{path}: no such file")
    return Room(participants=participants, admin=admin, ip=check_address(options.ip), port=options.port,
                state=str(options.state.resolve()), memory_limit=memory, limits=mechanism,
                cull_idle=parse_duration(options.cull_idle),
                cull_kernels=parse_duration(options.cull_kernels, "--cull-kernels"),
                threads=threads, terminals=not options.no_terminals, user_prefix=options.user_prefix,
                ssl_cert=str(options.ssl_cert.resolve()) if options.ssl_cert else None,
                ssl_key=str(options.ssl_key.resolve()) if options.ssl_key else None)


def password(variable: str, who: str) -> str:
    """A password from the environment, else asked twice on the terminal."""
    value = os.environ.get(variable, "")
    if not value:
        if not sys.stdin.isatty():
            raise RoomError(f"no {who} password: set {variable} or run me in a terminal to be asked")
        value = getpass.getpass(f"{who.capitalize()} password (at least {MIN_PASSWORD} characters): ")
        if getpass.getpass("Again: ") != value:
            raise RoomError("the two passwords differ")
    if len(value) < MIN_PASSWORD:
        raise RoomError(f"the {who} password is shorter than {MIN_PASSWORD} characters")
    return value


def blocked(paths: list[Path]) -> list[Path]:
    """Folders on the way to PATHS (symbolic links followed) that other users cannot enter, outermost first."""
    found = []
    for path in paths:
        for folder in reversed(path.resolve().parents):
            if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH and folder not in found:
                found.append(folder)
    return found


def reachable_paths(room: Room) -> list[Path]:
    """What a participant's server must reach: the venv's Python (wherever it links to), the repository, the homes."""
    python = Path(room.venv) / "bin" / "python"
    return [python.resolve(), Path(room.venv) / "bin" / "jupyterhub-singleuser", Path(room.repo) / "notebooks",
            room.homes() / "x"]


def ensure_proxy() -> None:
    """configurable-http-proxy from tools/hub/package-lock.json (npm ci once)."""
    installed = HERE / "node_modules" / ".package-lock.json"
    if PROXY.exists() and installed.stat().st_mtime >= (HERE / "package-lock.json").stat().st_mtime:
        return
    if shutil.which("npm") is None:
        raise RoomError("npm is needed once to install the hub's proxy (configurable-http-proxy): "
                        "sudo apt-get install npm")
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE,
                          capture_output=True, text=True)
    if done.returncode:
        raise RoomError(f"npm ci in tools/hub failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")


def prepare_state(room: Room) -> None:
    """The state folder (0711: participants pass through to their homes, list nothing) and homes/."""
    for folder in (Path(room.state), room.homes()):
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, 0, 0)
        folder.chmod(0o711)


def share_smollm2(room: Room) -> str:
    """SmolLM2's float32 cache, built once in <state>/shared/selfextend-cache and readable by every participant.

    transformers maps the cached model.safetensors instead of copying it, so kernels that read the same file share
    its pages: 30 participants hold one 517 MB copy instead of 30 (and dequantize nothing)."""
    from selfextend.hf.smollm2 import smollm2_folder

    cache = Path(room.state) / "shared" / "selfextend-cache"
    smollm2_folder(cache)
    for path in [cache.parent, *cache.parent.rglob("*")]:
        os.chown(path, 0, 0)
        path.chmod(0o755 if path.is_dir() else 0o644)
    return str(cache)


def banner(room: Room, pid: int) -> str:
    """What to put on the projector, and how to stop."""
    limit = (f"{room.memory_limit / 2**30:.1f} GiB of memory each ({room.limits})" if room.memory_limit
             else "no memory limit")
    idle = f"idle servers stopped after {room.cull_idle // 60} min" if room.cull_idle else "idle servers never stopped"
    idle += (f", idle kernels after {room.cull_kernels // 60} min" if room.cull_kernels >= 60 else
             f", idle kernels after {room.cull_kernels} s" if room.cull_kernels else ", idle kernels never stopped")
    lines = [
        f"SelfExtend room: JupyterHub for {len(room.participants)} participants and {room.admin} (admin)",
        f"  On the projector:  {room.url()}",
        "  Sign in:           a name from the roster and the room password "
        f"({room.admin}: the teacher password)",
        f"  Limits:            {limit}; {idle}; {room.threads} thread(s) per kernel",
        f"  Homes:             {room.homes()} (kept when the hub stops)",
        f"  Log:               {Path(room.state) / LOG}",
        f"  Stop:              Ctrl-C here, or kill -TERM {pid}; saved notebooks stay",
        f"  Solutions:         .venv/bin/python tools/hub/admin.py --state {room.state} release-solutions",
    ]
    if not room.model_cache:
        lines.append("  Half-day track (SmolLM2 in notebooks 08, 11-13): restart with --share-smollm2, so that "
                     "the room maps one copy of the model instead of one per participant.")
    if room.ip in ("127.0.0.1", "::1"):
        lines.append("  Only this machine can open it: for the room, restart with --ip 0.0.0.0 (or the LAN address).")
    elif is_public(room.ip) and not room.ssl_cert:
        lines.append("  This address is reachable from the internet: put TLS in front (see WORKSHOP.md, e.g. "
                     f"caddy reverse-proxy --from hub.example.org --to 127.0.0.1:{room.port} with --ip 127.0.0.1), "
                     "or pass --ssl-cert/--ssl-key.")
    return "\n".join(lines)


def wait_ready(room: Room, hub: subprocess.Popen, timeout: float = 180.0) -> bool:
    """Poll the hub's health check through the proxy until it answers; False if the hub died or timed out."""
    host = "127.0.0.1" if room.ip in ("0.0.0.0", "127.0.0.1") else ("::1" if room.ip == "::" else room.ip)
    scheme = "https" if room.ssl_cert else "http"
    url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{room.port}/hub/health"
    context = ssl._create_unverified_context() if room.ssl_cert else None  # our own certificate, any name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and hub.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5, context=context) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def log_tail(room: Room, lines: int = 15) -> str:
    """The end of the hub's log."""
    try:
        return "\n".join((Path(room.state) / LOG).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    """Check everything, start JupyterHub, print the banner, run until Ctrl-C or SIGTERM."""
    options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        room = build_room(options)
        if not sys.platform.startswith("linux"):
            raise RoomError("the room server runs on Linux (it creates a Unix user per participant)")
        if os.geteuid() != 0:
            raise RoomError("run me as root (it creates a Unix user per participant): "
                            f"sudo {os.path.relpath(sys.executable)} tools/hub/serve.py ...")
        if room.limits != "none":
            limits.check(room.limits)
        secrets = {ROOM_PASSWORD: password(ROOM_PASSWORD, "room"), ADMIN_PASSWORD: password(ADMIN_PASSWORD, "teacher")}
        if secrets[ROOM_PASSWORD] == secrets[ADMIN_PASSWORD]:
            raise RoomError("the teacher password must differ from the room password (participants know that one)")
        if not is_free(room.port, room.ip):
            raise RoomError(f"{room.ip}:{room.port} is in use (another hub?): pick another --port")
        prepare_state(room)
        if walls := blocked(reachable_paths(room)):
            raise RoomError(f"participants could not reach the notebooks or .venv: other users cannot enter {walls[0]} "
                            f"(mode {stat.filemode(walls[0].stat().st_mode)}); allow it (sudo chmod o+x {walls[0]}) "
                            "or clone and set up the repository outside a private home, e.g. in /srv")
        ensure_proxy()
        if options.share_smollm2:
            print("Preparing SmolLM2 once for the whole room (the first time: about a minute)...", flush=True)
            try:
                room.model_cache = share_smollm2(room)
            except (ImportError, RuntimeError) as error:
                raise RoomError(f"--share-smollm2: {str(error).splitlines()[0]}")
    except (RoomError, limits.LimitError) as error:
        refuse(str(error))
    room.hub_port = pick(set())  # below the range of outgoing connections (ports.py)
    room.proxy_api_port = pick({room.hub_port})
    os.umask(0o077)  # the hub's database, pid files and log: root only (participants may pass through <state>)
    for private in Path(room.state).glob("jupyterhub*"):
        private.chmod(0o600)
    room.save()
    env = {**os.environ, **secrets, "SELFEXTEND_HUB_STATE": room.state}
    with open(Path(room.state) / LOG, "ab") as log:
        os.fchmod(log.fileno(), 0o600)
        hub = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(HERE / "jupyterhub_config.py")],
                               cwd=room.state, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stopping = []

    def stop(*_) -> None:
        """Ctrl-C or SIGTERM: JupyterHub stops every server and the proxy, then exits."""
        stopping.append(True)
        hub.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not wait_ready(room, hub):
        hub.terminate()
        hub.wait(60)
        if stopping:
            print("serve.py: stopped before the hub was ready", file=sys.stderr)
            return 1
        print(f"serve.py: the hub did not start; the end of {Path(room.state) / LOG}:\n{log_tail(room)}",
              file=sys.stderr)
        return 1
    print(banner(room, os.getpid()), flush=True)
    code = hub.wait()
    print(f"serve.py: the hub stopped (exit code {code}); the homes stay in {room.homes()}", flush=True)
    return 0 if code in (0, -signal.SIGTERM, 128 + signal.SIGTERM) else code


if __name__ == "__main__":
    sys.exit(main())
