"""Runs a function in a forked child process, for tests of what an object inherited over os.fork()
does in the child (a DataLoader worker, a multiprocessing pool).

    got = run_in_child(lambda: client.get(bucket, "k"))
"""
import os
import traceback


def run_in_child(fn):
    """Forks; the child runs fn(), sends the bytes it returns back through a pipe and leaves with
    os._exit, never returning into pytest (a failure there prints its traceback and exits 1).
    In the parent: asserts that the child exited with code 0 and returns its bytes."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read)
            data = fn()
            with os.fdopen(write, "wb") as w:
                w.write(data)
            status = 0
        except BaseException:  # noqa: BLE001 - reported through the exit code
            traceback.print_exc()
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as r:
        got = r.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child failed: see its traceback above"
    return got
