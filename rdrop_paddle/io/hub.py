"""Pretrained weights by name: ``hf-hub:ORG/NAME[@REVISION]`` (timm's spelling), fetched through
``huggingface_hub`` — its cache, ``HF_ENDPOINT`` (a mirror), ``HF_HUB_OFFLINE``, ``HF_TOKEN``
(private repositories), revisions pinned by ``@`` — into a local folder that the converters
read as if it had been downloaded by hand.

Only the files a model folder needs are fetched, each by name: ``config.json``, the weights in
transformers' order of preference (``model.safetensors``, its shard index and shards, then
``pytorch_model.bin`` and its shards, then PaddleNLP's ``model_state.pdparams``) and the tokenizer
files.  Shard names come from the index and must be plain file names.
"""
from __future__ import annotations

import os
import re
import time

from rdrop_paddle.errors import UserInputError

PREFIX = "hf-hub:"
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
           "model_state.pdparams")
EXTRA = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "added_tokens.json")


def is_hub(name: str) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def parse(name: str) -> tuple[str, str | None]:
    """``(repo_id, revision)`` of ``hf-hub:ORG/NAME[@REVISION]``."""
    spec = name[len(PREFIX):]
    repo, _, revision = spec.partition("@")
    if not _REPO.match(repo) or ".." in repo or (revision and (not _REVISION.match(revision) or ".." in revision)):
        raise UserInputError(f"{name[:120]!r} is not hf-hub:ORG/NAME or hf-hub:ORG/NAME@REVISION")
    return repo, revision or None


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise UserInputError("hf-hub: names need huggingface_hub: pip install huggingface_hub") from None
    return huggingface_hub


RETRIES = 3  # attempts at a file the Hub (or a mirror) answers with a server error


def _download(hub, repo: str, revision: str | None, filename: str) -> str:
    """``hf_hub_download``, tried again after a 5xx answer (huggingface_hub does not retry one;
    what arrived of the file stays in its cache and the next attempt resumes it)."""
    from huggingface_hub import errors

    for attempt in range(1, RETRIES):
        try:
            return hub.hf_hub_download(repo, filename, revision=revision)
        except errors.HfHubHTTPError as e:
            if (getattr(getattr(e, "response", None), "status_code", 0) or 0) < 500:
                raise
            time.sleep(0.2 * attempt)
    return hub.hf_hub_download(repo, filename, revision=revision)  # the last attempt: its error is the answer


def _fetch(repo: str, revision: str | None, filename: str, required: bool) -> str | None:
    """The local path of one file of ``repo``, or None if the repository has no such file."""
    hub = _hub()
    from huggingface_hub import errors

    try:
        return _download(hub, repo, revision, filename)
    except errors.LocalEntryNotFoundError:  # offline: what the cache knows, present or absent
        from huggingface_hub.file_download import _CACHED_NO_EXIST

        cached = hub.try_to_load_from_cache(repo, filename, revision=revision)
        if isinstance(cached, str):
            return cached
        if cached is _CACHED_NO_EXIST and not required:
            return None
        raise UserInputError(
            f"hf-hub:{repo}: {filename} is not in the Hugging Face cache ({hub.constants.HF_HUB_CACHE}) and the Hub "
            f"cannot be reached (HF_HUB_OFFLINE, no network or a timeout): download the repository's files into a "
            f"folder and pass that folder, or set HF_ENDPOINT to a mirror") from None
    except errors.EntryNotFoundError:
        if required:
            raise UserInputError(f"hf-hub:{repo} has no {filename}") from None
        return None
    except errors.RevisionNotFoundError:
        raise UserInputError(f"hf-hub:{repo} has no revision {revision!r}") from None
    except errors.RepositoryNotFoundError:
        raise UserInputError(f"hf-hub:{repo}: no such repository (or a private one: set HF_TOKEN)") from None
    except (errors.HfHubHTTPError, OSError, ValueError) as e:
        raise UserInputError(f"hf-hub:{repo}: cannot fetch {filename} ({type(e).__name__}: {str(e)[:200]})") from None


def snapshot(name: str) -> str:
    """A local folder holding what model folder ``name`` (``hf-hub:...``) needs: its config,
    its weights in the first layout it has, and its tokenizer files.  Offline, the cache serves:
    files it holds, and the absence of those the Hub said it did not have."""
    repo, revision = parse(name)
    config = _fetch(repo, revision, "config.json", required=False)
    for weights in WEIGHTS:
        path = _fetch(repo, revision, weights, required=False)
        if path is None:
            continue
        if weights.endswith(".index.json"):
            _fetch_shards(repo, revision, path)
        break
    else:
        raise UserInputError(f"hf-hub:{repo} has no weights: looked for {', '.join(WEIGHTS)}")
    for extra in EXTRA:
        _fetch(repo, revision, extra, required=False)
    folder = os.path.dirname(path)
    if config is not None and os.path.dirname(config) != folder:
        raise UserInputError(f"hf-hub:{repo}: its files came from different revisions; pin one with @REVISION")
    return folder


def _fetch_shards(repo: str, revision: str | None, index_path: str) -> None:
    from rdrop_paddle.io.files import read_json

    index = read_json(index_path, 64 << 20)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise UserInputError(f"hf-hub:{repo}: {os.path.basename(index_path)} has no weight_map")
    for shard in sorted(set(weight_map.values())):
        if not isinstance(shard, str) or os.path.basename(shard) != shard or shard in ("", ".", ".."):
            raise UserInputError(f"hf-hub:{repo}: shard {str(shard)[:80]!r} is not a plain file name")
        _fetch(repo, revision, shard, required=True)


def weights_file(folder: str, name: str) -> str:
    """The single weights file of snapshot ``folder`` of ``name`` (timm and ViT repositories),
    safetensors first."""
    for weights in WEIGHTS:
        if not weights.endswith(".index.json") and os.path.isfile(os.path.join(folder, weights)):
            return os.path.join(folder, weights)
    raise UserInputError(f"{name}: sharded weights; convert a text model folder, or pass a single file")
