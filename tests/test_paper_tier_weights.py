"""Issue 27, items 2, 6 and 7: a local OpenAI checkpoint keeps QuickGELU (or loading says how to name it), random
weights are a named option marked in run.json, and run.json records the architecture the checkpoint really built.

The files are tiny: a 4-layer CLIP saved as OpenAI publishes its weights (a TorchScript archive holding the model's
state, with OpenAI's ``input_resolution``/``context_length``/``vocab_size`` entries), as a state dict, and so on.
Where a case needs an architecture for which open_clip knows releases of both activations, the tiny architecture is
given such a table (``_releases``); the refusal itself is also checked on ViT-B-16's real table, from a file of
a few bytes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from adu_core import backbones as bb
from adu_core.config import make_config
from adu_core.train import run_experiment
from tests._paper_tier_fixtures import PAPER_DEPTH_CFG, paper_depth_checkpoint

OPENAI_EXTRAS = {"input_resolution": torch.tensor(32), "context_length": torch.tensor(16),
                 "vocab_size": torch.tensor(49408)}


class _Node(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def torchscript_file(state: dict[str, torch.Tensor], path: Path) -> Path:
    """A TorchScript archive whose state dict is ``state`` (the form of OpenAI's released ViT-B-16.pt)."""
    root = _Node()
    for key, value in state.items():
        *parents, leaf = key.split(".")
        node = root
        for name in parents:
            if not hasattr(node, name):
                node.add_module(name, _Node())
            node = getattr(node, name)
        node.register_buffer(leaf, value.clone())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(root, torch.zeros(1)).save(str(path))
    return path


def activation(model) -> str:
    return type(model.visual.transformer.resblocks[0].mlp.gelu).__name__


@pytest.fixture(scope="module")
def tiny_state():
    torch.manual_seed(0)
    return bb.load_clip("adu-tiny").model.state_dict()


@pytest.fixture
def both_kinds(monkeypatch):
    """Give adu-tiny a release table with both activations, as open_clip's ViT-B-16 has."""
    table = {"openai": (True, "", "timm/adu_tiny.openai"), "laion": (False, "", "laion/adu-tiny")}
    monkeypatch.setattr(bb, "_releases", lambda name: table if name.startswith("adu-tiny") else {})
    return table


def test_openai_release_file_loads_with_quickgelu(tiny_state, tmp_path, both_kinds):
    path = torchscript_file({**tiny_state, **OPENAI_EXTRAS}, tmp_path / "ViT-tiny.pt")
    model = bb.load_clip("adu-tiny", path).model
    assert activation(model) == "QuickGELU"
    weights = model.adu_weights
    assert weights["architecture"]["activation"] == "quick_gelu"
    assert weights["activation_source"] == "OpenAI's release format (a TorchScript archive)"
    assert weights["name"] == "adu-tiny-quickgelu" and weights["asked"] == "adu-tiny"
    # the weights are the file's (OpenAI's extra entries dropped)
    assert torch.equal(model.state_dict()["visual.conv1.weight"], tiny_state["visual.conv1.weight"])


def test_openai_state_dict_loads_with_quickgelu(tiny_state, tmp_path, both_kinds):
    path = tmp_path / "openai_state.pt"
    torch.save({**tiny_state, **OPENAI_EXTRAS}, path)
    model = bb.load_clip("adu-tiny", path).model
    assert activation(model) == "QuickGELU"
    assert "OpenAI's state dict" in model.adu_weights["activation_source"]


def test_unmarked_weights_are_refused_with_the_way_to_name_them(tiny_state, tmp_path, both_kinds):
    path = tmp_path / "plain.pt"
    torch.save(tiny_state, path)
    with pytest.raises(bb.BackboneError, match=r"name it, backbone 'adu-tiny-quickgelu' for OpenAI's weights, "
                                               r"'adu-tiny-gelu' for GELU ones") as err:
        bb.load_clip("adu-tiny", path)
    assert "\n" not in str(err.value)
    assert activation(bb.load_clip("adu-tiny-quickgelu", path).model) == "QuickGELU"
    gelu = bb.load_clip("adu-tiny-gelu", path).model
    assert activation(gelu) == "GELU" and gelu.adu_weights["activation_source"] == "the name asked for (adu-tiny-gelu)"


def test_vit_b_16_state_dict_without_a_mark_is_refused():
    """On open_clip's real ViT-B-16 table (OpenAI, MetaCLIP, DFN: QuickGELU; LAION, DataComp: GELU)."""
    with pytest.raises(bb.BackboneError, match=r"backbone 'ViT-B-16-quickgelu' for OpenAI's weights"):
        bb.checkpoint_activation("ViT-B-16", Path("weights.bin"), {"visual.conv1.weight": None}, sha256="0" * 64)
    assert bb.checkpoint_activation("ViT-B-16", Path("weights.bin"), dict(OPENAI_EXTRAS), sha256="0" * 64)[0]
    # OpenAI's ViT-B-16.pt is recognised by the sha256 that its download URL carries
    sha = "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f"
    quick, why = bb.checkpoint_activation("ViT-B-16", Path("ViT-B-16.pt"), {}, sha256=sha)
    assert quick and "ViT-B-16/openai release" in why
    # ... and LAION's by the 8 hex digits of its file name
    quick, why = bb.checkpoint_activation("ViT-B-16", Path("w.pt"), {}, sha256="00efa78f" + "1" * 56)
    assert not quick and "laion400m_e31" in why


def test_release_checksum_hugging_face_cache_and_config_beside(tiny_state, tmp_path, monkeypatch):
    path = tmp_path / "w.pt"
    torch.save(tiny_state, path)
    sha = bb.file_sha256(path)
    table = {"openai": (True, f"https://example.org/clip/{sha}/tiny.pt", "timm/adu_tiny.openai"),
             "laion": (False, "", "laion/adu-tiny")}
    monkeypatch.setattr(bb, "_releases", lambda name: table)
    assert activation(bb.load_clip("adu-tiny", path).model) == "QuickGELU"
    table["openai"] = (True, "", "timm/adu_tiny.openai")
    snapshot = tmp_path / "hub" / "models--timm--adu_tiny.openai" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    cached = snapshot / "open_clip_pytorch_model.bin"
    cached.write_bytes(path.read_bytes())
    loaded = bb.load_clip("adu-tiny", cached).model
    assert activation(loaded) == "QuickGELU" and "timm/adu_tiny.openai" in loaded.adu_weights["activation_source"]
    beside = tmp_path / "laion"
    beside.mkdir()
    torch.save(tiny_state, beside / "w.pt")
    (beside / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"quick_gelu": False}}))
    assert activation(bb.load_clip("adu-tiny", beside / "w.pt").model) == "GELU"


def test_tag_and_unambiguous_architectures_are_unchanged(tiny_state, tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(tiny_state, path)  # adu-tiny has no releases: its config decides, as before
    model = bb.load_clip("adu-tiny", path).model
    assert activation(model) == "GELU" and model.adu_weights["activation_source"] == "the architecture's config (adu-tiny)"


def test_random_weights_are_a_named_option_marked_in_run_json(tmp_path):
    torch.manual_seed(3)
    named = bb.load_clip("adu-tiny", bb.RANDOM).model
    torch.manual_seed(3)
    default = bb.load_clip("adu-tiny", None).model
    assert named.adu_weights["random"] and default.adu_weights["random"]
    assert named.adu_weights["sha256"] == default.adu_weights["sha256"]  # the same random initialisation
    assert make_config("office_home").pretrained == "openai"  # never the paper tier's default
    cfg = make_config("synthetic", forget=("sketch",), epochs=1, pretrained="random")
    weights = run_experiment(cfg, tmp_path / "run", progress=False)["provenance"]["weights"]
    assert weights["random"] is True and weights["pretrained"] == "random"


def test_run_json_records_the_architecture_built_not_the_name_asked(tmp_path):
    ckpt = paper_depth_checkpoint(tmp_path / "tiny12.pt")
    cfg = make_config("synthetic", forget=("sketch",), epochs=1, backbone="ViT-B-16", pretrained=str(ckpt),
                      prompt_depth=9, n_ctx=2)
    weights = run_experiment(cfg, tmp_path / "run", progress=False)["provenance"]["weights"]
    assert weights["name"] == PAPER_DEPTH_CFG["name"] and weights["asked"] == "ViT-B-16"
    assert weights["random"] is False
    assert weights["architecture"] == {"image_size": 32, "vision_layers": 12, "vision_width": 64, "patch_size": 8,
                                       "activation": "gelu", "text_layers": 2, "embed_dim": 32}
