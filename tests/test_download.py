"""Data by name (issue 45): CIFAR-100 fetched from a real HTTP server on loopback (the stdlib's,
in a thread), serving a genuine-format archive with ``Range`` support, and every fault a
network has: a connection dropped mid-file, a 500 answered once, 404, a stall, a wrong file,
a full disk, two processes at once, no network.  Each ends in the verified file or one clear error, and a
partial or wrong file is never used."""
import hashlib
import http.server
import os
import subprocess
import sys
import threading
import time

import pytest

from helpers import ROOT, make_cifar100, one_error_line, run_tool
from rdrop_paddle.data.download import Source, download
from rdrop_paddle.errors import UserInputError


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        plan = self.server.plan
        plan["requests"].append(self.headers.get("Range"))
        first = len(plan["requests"]) == 1
        if plan["mode"] == "404" or (plan["mode"] == "500_once" and first):
            self.send_error(404 if plan["mode"] == "404" else 500)
            return
        data, start = plan["data"], 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if plan["mode"] in ("drop_once", "stall") and (first or plan["mode"] == "stall"):
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            if plan["mode"] == "stall":
                plan["stalled"].wait(30)
            return  # the connection closes short of Content-Length
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    (tmp_path / "served").mkdir()
    archive = tmp_path / "served" / "cifar-100-python.tar.gz"
    make_cifar100(archive, n_train=40, n_test=10)
    data = archive.read_bytes()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.plan = {"data": data, "mode": "ok", "requests": [], "stalled": threading.Event()}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/cifar-100-python.tar.gz"
    yield httpd.plan, Source(url, hashlib.md5(data).hexdigest(), 1 << 30, "RDROP_TEST_URL", "RDROP_TEST_MD5")
    httpd.plan["stalled"].set()
    httpd.shutdown()
    httpd.server_close()


def test_a_download_is_verified_and_then_read_from_the_cache(server, tmp_path, capsys):
    plan, source = server
    path = download(source, "cifar-100-python.tar.gz", home=str(tmp_path / "home"))
    assert open(path, "rb").read() == plan["data"] and sorted(os.listdir(tmp_path / "home")) == [
        "cifar-100-python.tar.gz", "cifar-100-python.tar.gz.lock"]
    assert "downloading http://127.0.0.1" in capsys.readouterr().out
    plan["mode"] = "404"  # the network is no longer needed
    assert download(source, "cifar-100-python.tar.gz", home=str(tmp_path / "home")) == path
    assert "downloading" not in capsys.readouterr().out and len(plan["requests"]) == 1


def test_a_dropped_connection_resumes_where_it_stopped(server, tmp_path):
    plan, source = server
    plan["mode"] = "drop_once"
    path = download(source, "c.tar.gz", home=str(tmp_path))
    assert open(path, "rb").read() == plan["data"]
    assert plan["requests"][0] is None and plan["requests"][1] == f"bytes={len(plan['data']) // 2}-"


def test_a_server_error_once_is_retried(server, tmp_path):
    plan, source = server
    plan["mode"] = "500_once"
    assert open(download(source, "c.tar.gz", home=str(tmp_path)), "rb").read() == plan["data"]


def test_a_wrong_file_is_removed_and_never_used(server, tmp_path):
    plan, source = server
    wrong = Source(source.url, "0" * 32, source.max_bytes, "RDROP_TEST_URL", "RDROP_TEST_MD5")
    with pytest.raises(UserInputError, match="MD5 is .*, not 0{32}: it was removed"):
        download(wrong, "c.tar.gz", home=str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["c.tar.gz.lock", "served"]


def test_not_found_is_one_error_naming_the_url(server, tmp_path):
    plan, source = server
    plan["mode"] = "404"
    with pytest.raises(UserInputError, match=f"{source.url} answered HTTP 404.*put it at"):
        download(source, "c.tar.gz", home=str(tmp_path))
    assert not os.path.exists(tmp_path / "c.tar.gz")


def test_a_stalled_server_times_out_and_keeps_the_part_for_the_next_run(server, tmp_path):
    plan, source = server
    plan["mode"] = "stall"
    start = time.monotonic()
    with pytest.raises(UserInputError, match="kept in .*c.tar.gz.part and the next run resumes it"):
        download(source, "c.tar.gz", home=str(tmp_path), timeout=0.5)
    assert time.monotonic() - start < 20 and not os.path.exists(tmp_path / "c.tar.gz")
    kept = os.path.getsize(tmp_path / "c.tar.gz.part")  # each retry resumed and got half the rest
    assert len(plan["data"]) // 2 <= kept < len(plan["data"])
    plan["mode"], plan["requests"] = "ok", []
    assert open(download(source, "c.tar.gz", home=str(tmp_path)), "rb").read() == plan["data"]
    assert plan["requests"] == [f"bytes={kept}-"]  # the next run resumed


def test_offline_is_one_error_naming_where_to_put_the_file(server, tmp_path, monkeypatch):
    _, source = server
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserInputError, match=r"network is off .*put it at .*c.tar.gz.*RDROP_TEST_URL"):
        download(source, "c.tar.gz", home=str(tmp_path))


def test_a_full_disk_is_one_error_and_nothing_is_cached(server, tmp_path):
    """The disk fills mid-file (the child's file size limit: writes fail with EFBIG, as ENOSPC
    on a full disk): one line naming the file, no retry, nothing at the archive's place."""
    plan, source = server
    code = ("import resource, signal, sys; from rdrop_paddle.data.download import Source, download\n"
            "from rdrop_paddle.errors import UserInputError\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
            f"try: download(Source({source.url!r}, {source.md5!r}, 1 << 30, 'X', 'Y'), 'c.tar.gz', home=sys.argv[1])\n"
            "except UserInputError as e: print(e)")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"cannot write {tmp_path / 'c.tar.gz.part'}: File too large; nothing was kept as" in res.stdout
    assert not (tmp_path / "c.tar.gz").exists() and len(plan["requests"]) == 1


def test_two_processes_download_once(server, tmp_path):
    plan, source = server
    code = ("import sys; from rdrop_paddle.data.download import Source, download\n"
            f"print(download(Source({source.url!r}, {source.md5!r}, 1 << 30, 'X', 'Y'), 'c.tar.gz', home=sys.argv[1]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert [o[0].strip().splitlines()[-1] for o in outs] == [str(tmp_path / "c.tar.gz")] * 2
    assert len(plan["requests"]) == 1  # one download; the other process found the file


@pytest.mark.slow
def test_the_recipe_config_downloads_cifar100_when_data_root_is_empty(server, tmp_path):
    """configs/vit_cifar100.yaml as shipped (``Data.root: ""``) on a machine without the archive:
    fetched into the data home (here from the loopback mirror), verified, trained on."""
    plan, source = server
    env = {"RDROP_DATA_HOME": str(tmp_path / "home"), "RDROP_CIFAR100_URL": source.url,
           "RDROP_CIFAR100_MD5": source.md5}
    args = ["-c", "configs/vit_cifar100.yaml", "-o", "Global.device=cpu", "-o", "Model.name=vit_tiny_patch16_224",
            "-o", "Model.image_size=32", "-o", "Global.max_steps=1", "-o", "Data.batch_size=32",
            "-o", "Optimizer.accum_steps=1", "-o", "Data.num_workers=0", "-o", f"Global.output_dir={tmp_path / 'run'}"]
    res = run_tool("tools/train.py", *args, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "downloaded" in res.stdout and (tmp_path / "home" / "cifar-100-python.tar.gz").is_file()
    plan["mode"] = "404"
    res = run_tool("tools/eval.py", *args, env=env)
    assert res.returncode == 0 and "downloading" not in res.stdout, res.stderr[-2000:]
    wrong = run_tool("tools/train.py", *args[:-2], "-o", f"Global.output_dir={tmp_path / 'b'}",
                     env={**env, "RDROP_DATA_HOME": str(tmp_path / "empty")})
    assert "answered HTTP 404" in one_error_line(wrong) and not (tmp_path / "b").exists()
