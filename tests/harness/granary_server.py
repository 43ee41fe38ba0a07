"""Starts and stops a real `granary server` for tests: free ports on 127.0.0.1, a temporary data
directory, kill -9 and restart, and the credentials and endpoints clients need.

    with GranaryServer() as server:
        s3 = server.boto3_client()
        client = server.native_client()   # needs the `granary` Python module
        raw = server.raw()                # s3_raw.RawS3: hand-signed requests
"""
import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

BINARY = os.environ.get("GRANARY_BINARY", "build/granary")
ACCESS_KEY = "GRANARYTESTACCESSKEY"
SECRET_KEY = "granary-test-secret-key-0123456789abcdef"


def _die_with_parent():
    """In the server's process before exec: SIGKILL it when the test process dies, so that a
    test process that crashes or is killed never leaves a server behind."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class GranaryServer:
    """env_keys=False starts the server without GRANARY_ACCESS_KEY / GRANARY_SECRET_KEY, so that
    it generates its root credentials (DATA/credentials.json); the clients then use the keys
    read from the file its ready line names."""

    def __init__(self, data_dir=None, disks=None, extra_args=(), env=None, s3_port=0,
                 native_port=0, env_keys=True):
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="granary-test-")
        self.disks = disks
        self.extra_args = list(extra_args)
        self.env = dict(os.environ)
        if env_keys:
            self.env.update({"GRANARY_ACCESS_KEY": ACCESS_KEY, "GRANARY_SECRET_KEY": SECRET_KEY})
        else:
            self.env.pop("GRANARY_ACCESS_KEY", None)
            self.env.pop("GRANARY_SECRET_KEY", None)
        if env:
            self.env.update(env)
        self.s3_port = s3_port
        self.native_port = native_port
        self.proc = None
        self.access_key = self.env.get("GRANARY_ACCESS_KEY")
        self.secret_key = self.env.get("GRANARY_SECRET_KEY")

    # Lifecycle ---------------------------------------------------------------------------------
    def start(self, timeout=60, wait=True):
        """Starts the server and waits for its ready line. Ports picked on the first start are
        kept for restarts, so clients can reconnect to the same endpoints. With wait=False it
        returns at once (to crash a server while it recovers); call wait_ready() later."""
        args = [BINARY, "server", "--data", self.data_dir,
                "--s3", f"127.0.0.1:{self.s3_port}", "--listen", f"127.0.0.1:{self.native_port}"]
        if self.disks:
            args += ["--disks", ",".join(self.disks)]
        args += self.extra_args
        self._log = open(os.path.join(self.data_dir, "server-test.log"), "ab")
        try:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log,
                                         env=self.env, preexec_fn=_die_with_parent)
        except OSError:
            self._log.close()
            raise
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=60):
        """Waits for the ready line of a server started with wait=False."""
        deadline = time.monotonic() + timeout
        pending = b""
        event = None
        while event is None:
            left = deadline - time.monotonic()
            ready = select.select([self.proc.stdout], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                self.kill()
                raise RuntimeError(f"granary server did not become ready in {timeout}s; "
                                   f"log: {self.log_text()[-4000:]}")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                code = self.proc.wait()
                self._close()
                raise RuntimeError(f"granary server exited with {code} before it was ready; "
                                   f"log: {self.log_text()[-4000:]}")
            pending += chunk
            while b"\n" in pending and event is None:
                line, pending = pending.split(b"\n", 1)
                try:
                    candidate = json.loads(line)
                except ValueError:
                    continue
                if isinstance(candidate, dict) and candidate.get("event") == "ready":
                    event = candidate
        self.s3_port = int(event["s3"].rsplit(":", 1)[1])
        self.native_port = int(event["native"].rsplit(":", 1)[1])
        self.ready_event = event
        if event.get("credentials", "environment") != "environment":
            with open(event["credentials"]) as f:
                keys = json.load(f)
            self.access_key, self.secret_key = keys["access_key"], keys["secret_key"]
        return self

    def stop(self, timeout=60, sig=signal.SIGTERM):
        """SIGTERM (or `sig`) and wait: a clean shutdown. Returns the exit code."""
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._close()
            raise RuntimeError(f"granary server did not stop within {timeout}s of {sig!r}")
        self._close()
        return code

    def kill(self):
        """SIGKILL: a crash."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self._close()

    def restart(self, crash=False):
        if crash:
            self.kill()
        else:
            self.stop()
        return self.start()

    def _close(self):
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
        self._log.close()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        with open(os.path.join(self.data_dir, "server-test.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc):
        try:
            if self.proc is not None:
                self.stop()
        finally:
            if self._own_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    # Endpoints and clients ---------------------------------------------------------------------
    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def native_address(self):
        return f"127.0.0.1:{self.native_port}"

    def boto3_client(self, endpoint=None, access_key=None, secret_key=None, **config):
        """A boto3 S3 client for this server. `max_attempts` is the total number of attempts
        (default 1: no hidden retries, so tests see the server's first answer)."""
        import boto3
        import botocore.config
        cfg = botocore.config.Config(
            s3={"addressing_style": config.pop("addressing_style", "path")},
            retries={"total_max_attempts": config.pop("max_attempts", 1), "mode": "standard"},
            **config)
        return boto3.client("s3", endpoint_url=endpoint or self.endpoint,
                            aws_access_key_id=access_key or self.access_key,
                            aws_secret_access_key=secret_key or self.secret_key,
                            region_name="us-east-1", config=cfg)

    def raw(self, timeout=60):
        """A RawS3 client (tests/harness/s3_raw.py) signing with this server's credentials."""
        import s3_raw
        return s3_raw.RawS3("127.0.0.1", self.s3_port, self.access_key, self.secret_key,
                            timeout=timeout)

    def native_client(self):
        import granary
        return granary.Client(self.native_address, self.access_key, self.secret_key)

    def aws_env(self):
        """Environment for the `aws` CLI (and others) pointed at this server: this server's
        credentials, and none of the caller's AWS_* settings (profiles, CA bundles, endpoints)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
        return env
