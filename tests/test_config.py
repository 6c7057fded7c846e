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
    assert make_config("pacs").pretrained.endswith("models/testbed/testbed_clip.pt")
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
