from __future__ import annotations

import pytest

from adu_core.config import RunConfig, field_docs, make_config, parse_override


def test_every_field_is_documented():
    docs = field_docs()
    assert docs and all(docs.values()), [k for k, v in docs.items() if not v]


def test_tiers_choose_defaults_and_overrides_win():
    paper = make_config("office_home")
    assert (paper.tier, paper.backbone, paper.pretrained) == ("paper", "ViT-B-16", "openai")
    assert (paper.n_ctx, paper.prompt_depth, paper.epochs, paper.lr, paper.gamma, paper.lam, paper.shots) == (
        8, 9, 50, 0.0025, 30.0, 10.0, 8)
    assert make_config("synthetic").tier == "smoke"
    assert make_config("pacs").tier == "testbed"
    assert make_config("pacs").pretrained == "models/testbed/testbed_clip.pt"  # project-relative: no machine's path
    assert make_config("office_home", epochs=3).epochs == 3
    with pytest.raises(ValueError, match="unknown tier"):
        make_config("pacs", tier="fast")
    with pytest.raises(ValueError, match="unknown config keys"):
        make_config("pacs", epoch=3)


def test_parse_override_by_declared_type():
    assert parse_override("epochs", "7") == 7
    assert parse_override("lr", "0.1") == 0.1
    assert parse_override("ddl", "false") is False
    assert parse_override("instapg_layers", "1,2,5") == (1, 2, 5)
    assert parse_override("instapg_layers", "none") is None
    assert parse_override("templates", '["a {}.", "a photo of a {}."]') == ("a {}.", "a photo of a {}.")
    assert parse_override("method.kd_weight", "2") == 2
    assert parse_override("method.lr", "none") is None
    with pytest.raises(ValueError, match="unknown config key"):
        parse_override("epoch", "1")
    with pytest.raises(ValueError, match="expects int"):
        parse_override("epochs", "many")


def test_config_roundtrip_and_key():
    cfg = make_config("synthetic", forget=("sketch",), seed=2)
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.key() == cfg.key()
    assert make_config("synthetic", forget=("sketch",), seed=3).key() != cfg.key()
    assert RunConfig(forget="a,b").forget == ("a", "b")


def test_tier_method_options_apply_to_their_method_only_and_explicit_wins():
    assert make_config("synthetic", method="bbf").method_options == {"iterations": 50}
    assert make_config("synthetic", method="lp++").method_options == {}
    assert make_config("synthetic", method="bbf", method_options={"iterations": 7}).method_options == {"iterations": 7}
    assert make_config("office_home", method="bbf").method_options == {}


# Fields that are free text (names checked against registries elsewhere) or identity: no range rule.
FREE_TEXT = {"dataset", "forget", "method", "backbone", "pretrained", "data_root"}


def test_every_other_field_has_a_range_rule():
    from dataclasses import fields

    from adu_core.config import RULES

    names = {f.name for f in fields(RunConfig)}
    assert set(RULES) <= names
    assert names - FREE_TEXT - set(RULES) == set(), "add a rule to adu_core.config.RULES"
    make_config("pacs").validate()  # every tier's defaults are in range
    make_config("office_home").validate()
    make_config("synthetic").validate()


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("epochs", -1, "a whole number >= 1"),
    ("epochs", 0, "a whole number >= 1"),
    ("lr", 0.0, "a number > 0"),
    ("lr", float("nan"), "a number > 0"),
    ("batch_size", 0, "a whole number >= 1"),
    ("shots", 0, "a whole number >= 1"),
    ("domain_label_fraction", 1.5, "within [0, 1]"),
    ("gamma", -1.0, "a number >= 0"),
    ("lam", -0.5, "a number >= 0"),
    ("prompt_depth", -2, "a whole number >= 0"),
    ("n_ctx", 0, "a whole number >= 1"),
    ("instapg_heads", -1, "a whole number >= 0"),
    ("instapg_layers", (1.5,), "layer indices within"),
    ("text_ctx", -1, "a whole number >= 0"),
    ("forget_loss", "kl", "uniform_ce, neg_entropy or none"),
    ("mmd_on", "pixels", "feature or domain_logits"),
    ("mmd_median", "mean", "batch or pair"),
    ("domain_head", "classes", "domains or domains_x_classes"),
    ("sampler", "sequential", "balanced or random"),
    ("augment", "jitter", "centre_crop or full_image"),
    ("instapg_form", "other", "paper or authors"),
    ("momentum", 1.0, "within [0, 1)"),
    ("crop_scale", (0.9, 0.1), "0 < lo <= hi <= 1"),
    ("mmd_kernel", "cosine", "gaussian, linear or laplacian"),
    ("mmd_bandwidths", (), "one or more numbers > 0"),
    ("scheduler", "step", "cosine or constant"),
    ("precision", "fp8", "auto, bf16, fp16 or fp32"),
    ("ddl_feature", "logits", "embedding or pre_projection"),
    ("templates", ("a photo",), "with a {} where the class name goes"),
    ("max_test_per_domain", 0, "none (all) or a whole number >= 1"),
    ("seed", -3, "a whole number >= 0"),
    ("ddl", "yes", "true or false"),
])
def test_out_of_range_values_name_key_value_and_what_is_allowed(key, value, allowed):
    cfg = make_config("synthetic", **{key: value})
    with pytest.raises(ValueError) as err:
        cfg.validate()
    msg = str(err.value)
    assert msg.startswith(f"{key}={value!r} is out of range: ") and allowed in msg and "\n" not in msg


def test_cli_refuses_bad_values_in_one_line(capsys, tmp_path):
    from adu_core.cli import main

    out = tmp_path / "run"
    assert main(["run", "--dataset", "synthetic", "--forget", "sketch", "--set", "epochs=-1",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "adu: error: epochs=-1 is out of range: a whole number >= 1"
    assert not (out / "run.json").exists()
    assert main(["run", "--dataset", "synthetic", "--forget", "sketch", "--set", "batch_size=2",
                 "--out", str(out)]) == 2
    assert "batch_size=2 is out of range: at least" in capsys.readouterr().err


def test_forget_alias_is_said(capsys, tmp_path):
    from adu_core.train import resolve_config

    cfg = resolve_config(make_config("pacs", forget=("painting",), data_root=str(tmp_path)))
    assert cfg.forget == ("art_painting",)
    assert "on pacs, 'painting' means domain 'art_painting'" in capsys.readouterr().err
    resolve_config(make_config("pacs", forget=("art_painting",), data_root=str(tmp_path)))
    assert capsys.readouterr().err == ""  # the canonical name needs no note
