"""Preset resolution: names, aliases, YAML paths, clear errors for unknown names."""

import pytest

from joyai_embodied import BackendUnavailableError, WorldModel
from joyai_embodied.world_model import list_presets, resolve_preset


def test_shipped_presets_are_found():
    presets = list_presets()
    assert "geometric" in presets
    assert resolve_preset("geometric")["backend"] == "geometric"


def test_yaml_path_and_overrides(tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text("backend: geometric\nhole_fill_px: 3\n")
    assert resolve_preset(preset) == {"backend": "geometric", "hole_fill_px": 3}
    assert resolve_preset(str(preset))["hole_fill_px"] == 3


def test_unknown_names_list_what_exists(tmp_path):
    with pytest.raises(BackendUnavailableError, match="geometric"):
        WorldModel.load("no-such-model")
    with pytest.raises(BackendUnavailableError, match="does not exist"):
        WorldModel.load(tmp_path / "missing.yaml")


def test_preset_without_backend_key_is_refused(tmp_path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("device: cpu\n")
    with pytest.raises(ValueError, match="backend"):
        resolve_preset(preset)
