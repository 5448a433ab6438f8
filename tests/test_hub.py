"""Pretrained weights by name (issue 45): ``hf-hub:ORG/NAME[@REVISION]`` resolved by
huggingface_hub against a real HTTP server on loopback (``HF_ENDPOINT``) that speaks the Hub's
download protocol as huggingface_hub uses it (HEAD/GET ``/{repo}/resolve/{revision}/{file}`` with
``X-Repo-Commit``, ``ETag``, ``Content-Length``, ``X-Error-Code``), serving folders that
transformers' and timm's own save functions wrote.  The converted model equals the same folder
converted from disk; faults are one line."""
import hashlib
import http.server
import os
import subprocess
import sys
import threading

import numpy as np
import paddle
import pytest

from helpers import one_error_line, run_tool
from text_reference import hf_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Hub(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, body: bool):
        parts = self.path.split("/")  # /org/name/resolve/revision/file
        repo, revision, filename = "/".join(parts[1:3]), parts[4], "/".join(parts[5:])
        self.server.requests.append((self.command, repo, revision, filename))
        folder = self.server.repos.get(repo)
        if (self.command, filename) in self.server.fail_once:  # a server error, then the file
            self.server.fail_once.discard((self.command, filename))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        code = ("RepoNotFound" if folder is None else "RevisionNotFound" if revision not in ("main", COMMIT)
                else None)
        path = os.path.join(folder, filename) if folder else ""
        if code is None and not os.path.isfile(path):
            code = "EntryNotFound"
        if code:
            self.send_response(404)
            self.send_header("X-Error-Code", code)
            if code == "EntryNotFound":  # as the Hub does: the commit it looked in (huggingface_hub caches the absence)
                self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(path, "rb").read()
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_HEAD(self):
        self._answer(False)

    def do_GET(self):
        self._answer(True)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    repos = {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    httpd.daemon_threads, httpd.repos, httpd.requests, httpd.fail_once = True, repos, [], set()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{httpd.server_address[1]}", "HF_HOME": str(tmp_path / "hf_home"),
           "HF_HUB_DISABLE_TELEMETRY": "1", "RDROP_DATA_HOME": str(tmp_path / "data_home"), "HF_HUB_OFFLINE": None}
    yield httpd, env
    httpd.shutdown()
    httpd.server_close()


def _convert(src, out, env, *extra):
    res = run_tool("tools/convert_weights.py", "--src", src, "--out", out, *extra, env=env)
    return res


def test_a_text_model_by_name_equals_the_same_folder_converted_from_disk(hub, tmp_path):
    httpd, env = hub
    hf_model("bert", tmp_path / "repo")
    httpd.repos["google-bert/tiny"] = str(tmp_path / "repo")
    res = _convert("hf-hub:google-bert/tiny", tmp_path / "by_name", env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert _convert(tmp_path / "repo", tmp_path / "by_path", env).returncode == 0
    from rdrop_paddle.models import from_pretrained

    ids = paddle.to_tensor(np.array([[2, 10, 11, 12, 3]]))
    logits = []
    for folder in ("by_name", "by_path"):
        model = from_pretrained(str(tmp_path / folder), 3)
        model.eval()
        logits.append(model(ids).numpy())
    np.testing.assert_array_equal(logits[0], logits[1])
    assert ("GET", "google-bert/tiny", "main", "model.safetensors") in httpd.requests
    assert not any(r[3] == "pytorch_model.bin" for r in httpd.requests)  # safetensors preferred
    code = ("import sys, numpy as np, paddle, rdrop_paddle\n"  # the library's one door, in a process of its own
            "model = rdrop_paddle.from_pretrained('hf-hub:google-bert/tiny', 3)\nmodel.eval()\n"
            "np.save(sys.argv[1], model(paddle.to_tensor(np.array([[2, 10, 11, 12, 3]]))).numpy())")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "door.npy")], capture_output=True, text=True,
                         timeout=300, env={**{k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"},
                                           **{k: v for k, v in env.items() if v is not None}})
    assert res.returncode == 0, res.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "door.npy"), logits[1])
    from rdrop_paddle.errors import UserInputError

    with pytest.raises(UserInputError, match=r"a name, not a folder; rdrop_paddle.from_pretrained"):
        from_pretrained("hf-hub:google-bert/tiny", 3)


def test_train_and_eval_take_an_hf_hub_name_and_use_the_cache_without_network(hub, tmp_path):
    from tests.text_reference import text_folder

    httpd, env = hub
    hf_model("bert", tmp_path / "repo", classes=2, max_position_embeddings=64)
    httpd.repos["org/tiny"] = str(tmp_path / "repo")
    data = text_folder(tmp_path / "data", train=["the movie is good\tpos", "the cat is bad\tneg"] * 8)
    args = ["-c", "configs/text_demo.yaml", "-o", f"Model.pretrained=hf-hub:org/tiny@{COMMIT}", "-o", f"Data.root={data}",
            "-o", f"Global.output_dir={tmp_path / 'run'}", "-o", "Global.max_steps=2", "-o", "Data.batch_size=4"]
    res = run_tool("tools/train.py", *args, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    converted = os.path.join(env["RDROP_DATA_HOME"], "converted", "org--tiny", COMMIT, "text")
    assert f"Model.pretrained hf-hub:org/tiny@{COMMIT}: {converted}" in res.stdout
    httpd.shutdown()  # the network is gone: the cache and the converted folder serve
    res = run_tool("tools/eval.py", *args, env={**env, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]


@pytest.mark.parametrize("name,message", [
    ("hf-hub:org/none", "no such repository"), ("hf-hub:org/tiny@v9", "has no revision 'v9'"),
    ("hf-hub:../etc", "is not hf-hub:ORG/NAME"), ("hf-hub:org/empty", "has no weights: looked for model.safetensors")])
def test_names_that_cannot_be_fetched_are_one_line(hub, tmp_path, name, message):
    httpd, env = hub
    hf_model("bert", tmp_path / "repo")
    httpd.repos["org/tiny"] = str(tmp_path / "repo")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    httpd.repos["org/empty"] = str(tmp_path / "empty")
    res = _convert(name, tmp_path / "out", env)
    assert message in one_error_line(res) and not (tmp_path / "out").exists()


def test_a_server_error_once_is_retried(hub, tmp_path):
    """The Hub answers 500 once for the weights' HEAD and once for their GET: each is tried again
    (huggingface_hub itself does not), and the conversion goes through."""
    httpd, env = hub
    hf_model("bert", tmp_path / "repo")
    httpd.repos["org/tiny"] = str(tmp_path / "repo")
    httpd.fail_once.update({("GET", "model.safetensors"), ("HEAD", "model.safetensors")})
    res = _convert("hf-hub:org/tiny", tmp_path / "out", env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "out" / "model.pdparams").is_file() and not httpd.fail_once  # both errors were met


def test_offline_with_an_empty_cache_is_one_line_naming_what_to_do(hub, tmp_path):
    _, env = hub
    res = _convert("hf-hub:org/tiny", tmp_path / "out", {**env, "HF_HUB_OFFLINE": "1"})
    line = one_error_line(res)
    assert "not in the Hugging Face cache" in line and "HF_ENDPOINT" in line and not (tmp_path / "out").exists()


def test_an_image_model_by_name_equals_the_same_file_converted_from_disk(hub, tmp_path):
    """A timm-layout ViT repository (model.safetensors, timm's pretrained config) by name."""
    import json

    from reference import to_timm
    from rdrop_paddle.alignment.reference import hf_vit, state_of
    from rdrop_paddle.io import load_paddle
    from safetensors.numpy import save_file

    httpd, env = hub
    (tmp_path / "repo").mkdir()
    save_file(to_timm(state_of(hf_vit(hidden=192, layers=12, heads=3, image=32, patch=16, classes=10))),
              str(tmp_path / "repo" / "model.safetensors"))
    (tmp_path / "repo" / "config.json").write_text(json.dumps({"architecture": "vit_tiny_patch16_224",
                                                               "num_classes": 10}))
    httpd.repos["timm/vit_tiny"] = str(tmp_path / "repo")
    common = ["--model", "vit_tiny_patch16_224", "--num-classes", "10", "--image-size", "32"]
    for src, out in (("hf-hub:timm/vit_tiny", "by_name.pdparams"), (tmp_path / "repo" / "model.safetensors",
                                                                    "by_path.pdparams")):
        res = _convert(src, tmp_path / out, env, *common)
        assert res.returncode == 0, res.stderr[-2000:]
    a, b = load_paddle(str(tmp_path / "by_name.pdparams")), load_paddle(str(tmp_path / "by_path.pdparams"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_on_two_nodes_rank_0_alone_fetches_an_image_models_weights(hub, tmp_path):
    """Issue 45 item 4: node 1 has no network (HF_HUB_OFFLINE) and a data home of its own, yet
    trains: rank 0 fetches and converts, then sends the weights as it sends a local file's."""
    from reference import to_timm
    from rdrop_paddle.alignment.reference import hf_vit, state_of
    from safetensors.numpy import save_file
    from test_multinode import QUICK, _launch

    httpd, env = hub
    (tmp_path / "repo").mkdir()
    save_file(to_timm(state_of(hf_vit(hidden=64, layers=4, heads=4, image=8, patch=4, classes=10, channels=1))),
              str(tmp_path / "repo" / "model.safetensors"))
    httpd.repos["timm/vit_nano"] = str(tmp_path / "repo")
    node_env = [{k: v for k, v in env.items() if v is not None},
                {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home1"), "RDROP_DATA_HOME": str(tmp_path / "home1")}]
    results = _launch(tmp_path, "hub", [[*QUICK, "-o", f"Global.output_dir={tmp_path / f'node{r}'}", "-o",
                                         "Global.max_steps=10", "-o", "Model.pretrained=hf-hub:timm/vit_nano"]
                                        for r in (0, 1)], envs=node_env)
    assert [r[0] for r in results] == [0, 0], results[0][1][-3000:] + results[1][1][-3000:]
    assert "Model.pretrained hf-hub:timm/vit_nano: " in results[0][1]
    assert not (tmp_path / "home1").exists() and not (tmp_path / "hf_home1").exists()
    assert len([r for r in httpd.requests if r[0] == "GET"]) >= 1
