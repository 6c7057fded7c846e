"""The testbed CLIP: the committed checkpoint and card, and the pretraining script (tiny, synthetic, deterministic)."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TESTBED = ROOT / "models" / "testbed"
CKPT = TESTBED / "testbed_clip.pt"
CARD = TESTBED / "card.json"
MAX_BYTES = 25 * 1000 * 1000
DOMAINS = ("art_painting", "cartoon", "photo", "sketch")


def _script():
    name = "pretrain_testbed_clip"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "data_scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look the module up while the file executes
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def card() -> dict:
    assert CARD.is_file(), f"{CARD} is missing: run data_scripts/pretrain_testbed_clip.py"
    return json.loads(CARD.read_text())


def test_checkpoint_size_and_hash(card):
    from adu_core.backbones import file_sha256

    assert CKPT.is_file(), f"{CKPT} is missing: run data_scripts/pretrain_testbed_clip.py"
    assert CKPT.stat().st_size <= MAX_BYTES
    assert card["checkpoint"]["bytes"] == CKPT.stat().st_size
    assert card["checkpoint"]["sha256"] == file_sha256(CKPT)


def test_checkpoint_loads_through_load_clip(card):
    from adu_core.backbones import load_clip, model_config
    from adu_core.config import TIERS, make_config
    from adu_core.prompting import PromptedViT

    clip, _, eval_tf, tokenizer = load_clip("adu-testbed", pretrained=CKPT)
    arch = {k: v for k, v in card["architecture"].items() if k != "name"}
    assert model_config("adu-testbed") == arch  # the committed open_clip config is the checkpoint's architecture
    vis = arch["vision_cfg"]
    assert clip.visual.image_size == (vis["image_size"], vis["image_size"])
    assert len(clip.visual.transformer.resblocks) == vis["layers"]
    assert clip.adu_weights["sha256"] == card["checkpoint"]["sha256"]
    # the testbed tier points at this file, and its prompt depth fits the encoder
    cfg = make_config("pacs")
    assert Path(cfg.pretrained).resolve() == CKPT.resolve() and cfg.backbone == "adu-testbed"
    assert TIERS["testbed"]["prompt_depth"] <= vis["layers"]
    with torch.no_grad():
        x = torch.randn(2, 3, vis["image_size"], vis["image_size"])
        img = clip.encode_image(x)
        txt = clip.encode_text(tokenizer(["a photo of a dog.", "a sketch of a horse."]))
        prompted = PromptedViT(clip.visual, n_ctx=cfg.n_ctx, depth=0)(x)
    assert img.shape == txt.shape == (2, arch["embed_dim"])
    torch.testing.assert_close(prompted, img)  # the prompted ViT wraps this encoder unchanged


def test_card_fields(card):
    for key in ("architecture", "training_config", "data", "zero_shot", "code", "hardware", "timings", "checkpoint",
                "diagnostics", "disjointness", "recipe_trials"):
        assert key in card, key
    zs = card["zero_shot"]
    assert zs["prompt"] == "a photo of a {}."
    assert set(zs["class_acc"]) == set(DOMAINS)
    assert abs(zs["class_acc_mean"] - sum(zs["class_acc"].values()) / 4) < 0.01
    assert 0 <= zs["domain_acc_concept"] <= 100 and 0 <= zs["domain_acc_style"] <= 100
    assert card["data"]["dataset"] == "pacs" and card["training_config"]["holdout"] == 0
    assert card["data"]["train_split"] == "pretrain" and card["version"] == "v2"
    assert "commit" in card["code"] and card["code"]["script_sha256"]
    assert (TESTBED / "README.md").is_file()


def test_card_meets_the_testbed_rules(card):
    """What a faithful proxy needs to land (DESIGN.md, issue 14): disjoint data, no memorisation, a mean class
    accuracy over the 60 % floor, domain information still there, and the v1 comparison. The stretch targets
    (mean >= 65 %, every domain >= 50 %) are reported, met or missed, in the card's README."""
    m = _script()
    assert card["disjointness"]["shared_sha256"] == 0
    assert card["disjointness"]["near_duplicate_pairs_across_same_cell"] == 0
    this, v1 = card["diagnostics"]["this"], card["diagnostics"]["v1"]
    test = this["test"]
    assert test["class_acc_mean"] >= m.LANDING_FLOOR, test["class_acc"]
    assert abs(this["memorisation_gap"]["pool_minus_test"]) <= m.GAP_LIMIT
    assert this["probe"]["domain"] >= m.DOMAIN_PROBE_MIN
    readme = (TESTBED / "README.md").read_text()
    for target, value, met in m.target_checks(card):  # every target in the README, a miss marked as one
        assert f"| {target} | {value} | {'met' if met else '**missed**'} |" in readme, target
    for model in (this, v1):
        shares = model["variance_share"]
        assert 0 <= shares["class"] <= 1 and 0 <= shares["domain"] <= 1
        assert model["logit_scale"] > 0
    assert card["checkpoint"]["bytes"] <= MAX_BYTES


def test_card_matches_the_shared_pacs_copy(card, shared_datasets):
    from adu_core.data import get_dataset
    from adu_core.data.splits import samples_sha256

    ds = get_dataset("pacs", root=shared_datasets)
    assert card["data"]["manifest_sha256"] == ds.manifest_sha256()
    assert card["data"]["n_train"] == len(ds.samples("pretrain"))
    assert card["data"]["train_list_sha256"] == samples_sha256(ds.samples("pretrain"))
    assert sum(card["zero_shot"]["n_test"].values()) == len(ds.samples("test"))
    assert card["disjointness"]["images"] == {"pretrain": 6695, "train": 560, "test": 2736}


def test_captions_cover_the_eval_prompt():
    m = _script()
    cfg = m.PretrainConfig()
    styles = ["painting", "cartoon", "photo", "sketch"]
    caps = m.build_captions(styles, ["dog", "horse"], cfg)
    assert "a photo of a dog." in caps.texts  # the zero-shot prompt is one of the trained captions
    assert caps.concept_idx.shape == (len(cfg.style_templates), 8)
    assert caps.style_class_idx.shape == (len(cfg.style_templates), 4, 2)
    assert caps.texts[int(caps.style_class_idx[0, 3, 1])] == "a sketch of a horse."
    assert len(set(caps.texts)) == len(caps.texts)


def _tiny_run(seed: int):
    from adu_core.data import get_dataset
    from adu_core.data.tensor_cache import cached_images

    m = _script()
    ds = get_dataset("synthetic")
    train = ds.samples("train")
    samples = [s for d in ds.domains for s in [x for x in train if x.domain == d][:6]]
    images = cached_images(ds, samples, 40, progress=False)  # synthetic: decoded in memory
    labels = torch.tensor([s.label for s in samples])
    domains = torch.tensor([ds.domains.index(s.domain) for s in samples])
    cfg = m.PretrainConfig(seed=seed, steps=2, batch_size=8, image_size=32, cache_size=40, patch_size=8,
                           vision_width=32, vision_layers=2, vision_heads=2, text_width=32, text_layers=1,
                           text_heads=1, embed_dim=16, warmup_steps=1)
    styles = [m.style_words_for(ds)[d] for d in ds.domains]
    model, history = m.train(cfg, images, labels, domains, styles, ds.classnames, progress=False, log=lambda s: None)
    return cfg, model, history


def test_pretrain_runs_and_is_deterministic(tmp_path):
    from adu_core.backbones import load_clip

    m = _script()
    cfg, a, hist = _tiny_run(seed=3)
    _, b, _ = _tiny_run(seed=3)
    _, c, _ = _tiny_run(seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # same seed -> identical weights
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert len(hist) == 2 and all(torch.isfinite(torch.tensor(h["loss"])) for h in hist)
    # the script's checkpoint goes through the project loader
    path = tmp_path / "tiny.pt"
    from adu_core.backbones import save_checkpoint

    save_checkpoint(a, cfg.model_cfg(), path, mean=m.MEAN, std=m.STD)
    loaded = load_clip("ignored-name", pretrained=path).model
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        reference = copy.deepcopy(a).half().float()  # the file holds fp16 weights
        torch.testing.assert_close(loaded.encode_image(x), reference.encode_image(x))


def test_card_predictions_are_reproduced(card, shared_datasets):
    """The committed checkpoint makes the card's zero-shot predictions on its fixed check subset (192 test images).

    The images come through the user's tensor cache (content-keyed, shared with `adu run`), so they are decoded once.
    """
    from adu_core.backbones import load_clip
    from adu_core.data import get_dataset
    from adu_core.data.tensor_cache import cached_images

    m = _script()
    check = card["reproduce_check"]
    ds = get_dataset("pacs", root=shared_datasets)
    test = ds.samples("test")
    domains = torch.tensor([ds.domains.index(s.domain) for s in test])
    idx = m.check_indices(domains)
    assert len(idx) == check["n"]
    size = card["architecture"]["vision_cfg"]["image_size"]
    images = cached_images(ds, [test[i] for i in idx], size, progress=False)
    clip = load_clip("adu-testbed", pretrained=CKPT).model
    styles = [card["style_words"][d] for d in ds.domains]
    pred = m.zero_shot_predictions(clip, images, styles, ds.classnames, card["architecture"]["text_cfg"]["context_length"])
    # identical on the machine that wrote the card; another CPU may flip a near-tie or two
    assert (pred["class"] != torch.tensor(check["pred_class"])).sum() <= 2
    assert (pred["domain_concept"] != torch.tensor(check["pred_domain_concept"])).sum() <= 2


def test_style_augmentation_rerenders_and_masks():
    m = _script()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 24, 24)
    for name, op in m.STYLE_OPS.items():
        y = op(x, gen)
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1, name
        assert not torch.allclose(y, x), name
    gray = m.style_gray(x, gen)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    square = torch.full((1, 3, 24, 24), 0.8)
    square[:, :, 8:16, 8:16] = 0.1
    edges = m.style_edges(square, gen)
    assert float(edges.mean()) > 0.7 and float(edges[0, 0, 8, 12]) < 0.3  # a dark outline on a white page
    off = m.PretrainConfig(style_prob=0.0)
    y, styled = m.stylize(x, gen, off)
    assert torch.equal(y, x) and not styled.any()
    y, styled = m.stylize(x, gen, m.PretrainConfig(style_prob=1.0))
    assert styled.all() and not torch.allclose(y, x)


def test_rerendered_images_train_the_class_terms_only():
    """A re-rendered image has no domain: its domain label must not change the domain, concept or t2i terms."""
    m = _script()
    cfg = m.PretrainConfig()
    styles, classes = ["painting", "cartoon", "photo", "sketch"], ["dog", "horse", "house"]
    caps = m.build_captions(styles, classes, cfg)
    gen = torch.Generator().manual_seed(1)
    img = torch.nn.functional.normalize(torch.randn(8, 16, generator=gen), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(len(caps.texts), 16, generator=gen), dim=-1)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    domains = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    styled = torch.tensor([True, False, True, False, False, False, False, True])
    scale = torch.tensor(10.0)
    a = m.clip_loss(img, txt, scale, labels, domains, caps, cfg, styled)
    other = domains.clone()
    other[styled] = (other[styled] + 1) % 4  # another domain for the re-rendered images only
    b = m.clip_loss(img, txt, scale, labels, other, caps, cfg, styled)
    for term in ("concept", "domain", "t2i", "class", "style_class"):
        torch.testing.assert_close(a[term], b[term], msg=term)
    c = m.clip_loss(img, txt, scale, labels, other, caps, cfg, torch.zeros(8, dtype=torch.bool))
    assert not torch.allclose(c["domain"], a["domain"])  # without the mask the domain labels count
