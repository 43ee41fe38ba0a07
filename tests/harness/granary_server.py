"""Starts and stops a real `granary server` for tests: free ports on 127.0.0.1, a temporary data
directory, kill -9 and restart, and the credentials and endpoints clients need.

    with GranaryServer() as server:
        s3 = server.boto3_client()
        client = server.native_client()   # needs the `granary` Python module
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

BINARY = os.environ.get("GRANARY_BINARY", "build/granary")
ACCESS_KEY = "GRANARYTESTACCESSKEY"
SECRET_KEY = "granary-test-secret-key-0123456789abcdef"


class GranaryServer:
    def __init__(self, data_dir=None, disks=None, extra_args=(), env=None, s3_port=0,
                 native_port=0):
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="granary-test-")
        self.disks = disks
        self.extra_args = list(extra_args)
        self.env = dict(os.environ)
        self.env.update({"GRANARY_ACCESS_KEY": ACCESS_KEY, "GRANARY_SECRET_KEY": SECRET_KEY})
        if env:
            self.env.update(env)
        self.s3_port = s3_port
        self.native_port = native_port
        self.proc = None
        self.access_key = self.env.get("GRANARY_ACCESS_KEY")
        self.secret_key = self.env.get("GRANARY_SECRET_KEY")

    # Lifecycle ---------------------------------------------------------------------------------
    def start(self, timeout=60):
        """Starts the server and waits for its ready line. Ports picked on the first start are
        kept for restarts, so clients can reconnect to the same endpoints."""
        args = [BINARY, "server", "--data", self.data_dir,
                "--s3", f"127.0.0.1:{self.s3_port}", "--listen", f"127.0.0.1:{self.native_port}"]
        if self.disks:
            args += ["--disks", ",".join(self.disks)]
        args += self.extra_args
        self._log = open(os.path.join(self.data_dir, "server-test.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log, env=self.env)
        deadline = time.monotonic() + timeout
        while True:
            line = self.proc.stdout.readline()
            if not line:
                code = self.proc.wait()
                raise RuntimeError(f"granary server exited with {code} before it was ready; "
                                   f"log: {self.log_text()[-4000:]}")
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "ready":
                break
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("granary server did not become ready in time")
        self.s3_port = int(event["s3"].rsplit(":", 1)[1])
        self.native_port = int(event["native"].rsplit(":", 1)[1])
        self.ready_event = event
        return self

    def stop(self, timeout=60):
        """SIGTERM and wait: a clean shutdown. Returns the exit code."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("granary server did not stop within %ss of SIGTERM" % timeout)
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

    def log_text(self):
        with open(os.path.join(self.data_dir, "server-test.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def __enter__(self):
        return self.start()

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

    def boto3_client(self, **config):
        import boto3
        import botocore.config
        cfg = botocore.config.Config(s3={"addressing_style": config.pop("addressing_style", "path")},
                                     retries={"max_attempts": config.pop("max_attempts", 1)},
                                     **config)
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1",
                            config=cfg)

    def native_client(self):
        import granary
        return granary.Client(self.native_address, self.access_key, self.secret_key)

    def aws_env(self):
        """Environment for the `aws` CLI (and others) pointed at this server."""
        env = dict(os.environ)
        env.update({"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
        return env
