"""Preset resolution: names, aliases, YAML paths, clear errors for unknown names."""

import pytest

from joyai_embodied import BackendUnavailableError, WorldModel
from joyai_embodied.world_model import PRESET_META_KEYS, list_presets, resolve_preset


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


# -- typed backend configs (contract 5) and entry-point discovery (contract 6) ---------------------------
from joyai_embodied import InvalidInputError  # noqa: E402
from joyai_embodied.backends import ENTRY_POINT_GROUP, available_backends, backend_class, create_backend  # noqa: E402
from joyai_embodied.backends.geometric.configuration_geometric import GeometricConfig  # noqa: E402
from joyai_embodied.backends.remote.configuration_remote import RemoteConfig  # noqa: E402
from joyai_embodied.config import config_from_options  # noqa: E402


def test_unknown_option_lists_the_accepted_keys():
    with pytest.raises(InvalidInputError) as caught:
        WorldModel.load("geometric", address="tcp://127.0.0.1:5555")
    assert caught.value.field == "address"
    for key in ("voxel_size_m", "hole_fill_px", "relation_margin_m", "cameras"):
        assert key in str(caught.value)
    with pytest.raises(InvalidInputError, match="timeout_s") as caught:
        create_backend("remote", device="cuda")  # the server picks the device; a client has none to ignore
    assert caught.value.field == "device"


@pytest.mark.parametrize("options, field, words", [
    ({"hole_fill_px": 2.5}, "hole_fill_px", "an integer"),
    ({"hole_fill_px": True}, "hole_fill_px", "an integer"),
    ({"voxel_size_m": "0.01"}, "voxel_size_m", "a number"),
    ({"voxel_size_m": 0.5}, "voxel_size_m", "[0, 0.1]"),
    ({"cameras": ["side"]}, "cameras", "a mapping"),
])
def test_wrongly_typed_or_out_of_range_options_name_the_field(options, field, words):
    with pytest.raises(InvalidInputError) as caught:
        create_backend("geometric", **options)
    assert caught.value.field == field and words in str(caught.value)


def test_configs_are_frozen_checked_and_coerce_ints_to_floats():
    config = config_from_options(GeometricConfig, {"voxel_size_m": 0, "hole_fill_px": 3}, "geometric backend")
    assert config.voxel_size_m == 0.0 and isinstance(config.voxel_size_m, float) and config.hole_fill_px == 3
    with pytest.raises(Exception):  # frozen
        config.hole_fill_px = 4
    with pytest.raises(InvalidInputError, match="retries"):
        RemoteConfig(retries="2")  # built directly, the config checks types too
    with pytest.raises(InvalidInputError, match="client_key"):
        RemoteConfig(server_key="keys/server.key")
    backend = create_backend("geometric", hole_fill_px=3)
    assert backend.config == GeometricConfig(hole_fill_px=3) and backend.hole_fill_px == 3


def test_every_shipped_preset_builds_its_backend_config():
    import yaml

    for name, path in sorted(list_presets().items()):
        options = yaml.safe_load(path.read_text())
        backend = options.pop("backend")
        for key in PRESET_META_KEYS:
            options.pop(key, None)
        config_class = backend_class(backend).config_class
        config = config_from_options(config_class, options, f"{backend} backend")
        assert config.to_dict().keys() == set(config_class.accepted_keys()), name


def test_backends_of_installed_packages_are_found_by_entry_point(tmp_path, monkeypatch):
    # A real distribution on sys.path, registering a backend the way ros_nodes registers "ros".
    (tmp_path / "h4_plugin_backend.py").write_text(
        "from joyai_embodied.backends.geometric import GeometricBackend\n"
        "class PluginBackend(GeometricBackend):\n    name = 'h4-plugin'\n")
    dist = tmp_path / "h4_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: h4-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nh4-plugin = h4_plugin_backend:PluginBackend\n")
    assert "h4-plugin" not in available_backends()
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "h4-plugin" in available_backends()
    wm = WorldModel.load("h4-plugin", hole_fill_px=1)  # its config_class is inherited: options are typed too
    assert wm.backend.name == "h4-plugin" and wm.backend.hole_fill_px == 1
    with pytest.raises(InvalidInputError, match="address"):
        WorldModel.load("h4-plugin", address="x")
