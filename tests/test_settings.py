"""Settings: defaults, validation messages, the schema file in sync, `handpose run --settings`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from handpose.errors import SettingsError
from handpose.settings import SETTINGS, AppSettings, setting_schema

ROOT = Path(__file__).resolve().parents[1]


def test_schema_file_matches_code():
    assert json.loads((ROOT / "setting_schema.json").read_text()) == setting_schema()


def test_act_settings_file_is_valid_and_complete():
    values = json.loads((ROOT / "act_settings.json").read_text())
    assert set(values) == {spec.name for spec in SETTINGS}
    AppSettings.from_dict(values)


def test_schema_is_readable_by_actfw(tmp_path, monkeypatch):
    from actfw_core.application import Application

    settings_file = tmp_path / "act.json"
    settings_file.write_text(json.dumps({"max_hands": 3}))
    monkeypatch.setenv("ACT_SETTINGS_PATH", str(settings_file))
    app = Application(stop_by_signals=())
    values = app.get_app_settings(str(ROOT / "setting_schema.json"))
    assert values.max_hands == 3
    assert values.score_threshold == 0.6


def test_defaults_and_overrides():
    settings = AppSettings.from_dict({"max_hands": 1, "score_threshold": 1, "hflip": True})
    assert settings.max_hands == 1
    assert settings.score_threshold == 1.0 and isinstance(settings.score_threshold, float)
    assert settings.nms_threshold == 0.45
    assert settings.swap_handedness  # hflip mirrors the image
    assert not settings.replace(mirrored_camera=True).swap_handedness


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"max_hands": 0}, ["'max_hands'", "0", "out of range", "from 1 to 8"]),
        ({"max_hands": "2"}, ["'max_hands'", "'2'", "wrong type", "an integer"]),
        ({"display": 1}, ["'display'", "true or false"]),
        ({"score_threshold": 1.5}, ["'score_threshold'", "1.5", "from 0 to 1"]),
        ({"rotation": 45}, ["'rotation'", "45", "one of 0, 90, 180, 270"]),
        ({"camera": "webcam"}, ["'camera'", "webcam", '"libcamera"']),
        ({"max_hands": True}, ["'max_hands'", "wrong type"]),
    ],
)
def test_bad_values_name_the_setting(values, words):
    with pytest.raises(SettingsError) as error:
        AppSettings.from_dict(values, "my.json")
    message = str(error.value)
    assert message.startswith("my.json: setting")
    for word in words:
        assert word in message


def test_unknown_keys_are_ignored(caplog):
    assert AppSettings.from_dict({"colour": "blue"}) == AppSettings()
    assert "colour" in caplog.text


def test_load_errors(tmp_path):
    with pytest.raises(SettingsError, match="not found"):
        AppSettings.load(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(SettingsError, match="bad.json: not a JSON"):
        AppSettings.load(bad)


def test_run_with_bad_settings_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"crop_scale": 9}))
    result = subprocess.run(
        [sys.executable, "-m", "handpose.cli", "run", "--settings", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "crop_scale" in lines[0] and "9" in lines[0] and "from 1 to 2.5" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
