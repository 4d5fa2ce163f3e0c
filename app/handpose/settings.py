"""The app's settings: one typed `AppSettings`, read once at start-up and validated.

Every setting is declared once in `SETTINGS` (name, JSON type, default, range, title,
description). `setting_schema.json` (what Actcast shows users) is generated from it
(`python -m handpose.settings > setting_schema.json`; a test keeps the file in sync), so the app
on the Pi, which ships without the schema, has the same defaults in code.

A wrong value stops start-up with `SettingsError` naming the setting, the value and what is
allowed. Unknown keys are logged and ignored (an older settings file must not brick the app).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from handpose.errors import SettingsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingSpec:
    """One setting: JSON Schema type ("boolean", "integer", "number", "string"), default, range."""

    name: str
    type: str
    default: Any
    title: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[Any, ...] | None = None


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "display",
        "boolean",
        False,
        "HDMI display",
        "Show the overlay (boxes, skeletons, 3D views) on the HDMI display.",
    ),
    SettingSpec(
        "score_threshold",
        "number",
        0.6,
        "Detection score threshold",
        "Hands scoring below this are ignored (0-1).",
        0.0,
        1.0,
    ),
    SettingSpec(
        "nms_threshold",
        "number",
        0.45,
        "NMS IoU threshold",
        "Boxes of one class overlapping more than this are merged (0-1).",
        0.0,
        1.0,
    ),
    SettingSpec(
        "max_hands",
        "integer",
        2,
        "Maximum hands",
        "At most this many hands (highest scores) get a pose per frame.",
        1,
        8,
    ),
    SettingSpec(
        "crop_scale",
        "number",
        1.2,
        "Crop scale",
        "Side of the square pose crop = max(box width, height) x this.",
        1.0,
        2.5,
    ),
    SettingSpec(
        "notify_interval",
        "number",
        1.0,
        "Notify interval (s)",
        "Seconds between hand events while hands are present; appear/lost events are sent at once.",
        0.1,
        3600.0,
    ),
    SettingSpec(
        "lost_timeout",
        "number",
        0.3,
        "Lost timeout (s)",
        "A hand unseen for this long is reported lost (bridges detector flicker).",
        0.0,
        10.0,
    ),
    SettingSpec(
        "tracking",
        "boolean",
        True,
        "Tracking",
        "Follow hands from frame to frame: the next crops come from the last keypoints and the "
        "detector is skipped while the tracked hands stay confident.",
    ),
    SettingSpec(
        "detect_interval",
        "integer",
        10,
        "Detector interval (frames)",
        "With tracking, the detector still runs at least every this many frames to find new "
        "hands (1 = every frame).",
        1,
        300,
    ),
    SettingSpec(
        "track_threshold",
        "number",
        0.3,
        "Tracking confidence",
        "A tracked hand whose mean keypoint score falls below this is dropped and the detector "
        "runs on the next frame (0-1).",
        0.0,
        1.0,
    ),
    SettingSpec(
        "smoothing",
        "boolean",
        True,
        "Smoothing",
        "Smooth the keypoints, boxes and 3D joints of tracked hands over time (One Euro filter).",
    ),
    SettingSpec(
        "smoothing_min_cutoff",
        "number",
        0.5,
        "Smoothing cutoff (Hz)",
        "One Euro minimum cutoff frequency: lower is steadier when the hand is still, with "
        "more lag.",
        0.01,
        30.0,
    ),
    SettingSpec(
        "smoothing_beta",
        "number",
        10.0,
        "Smoothing speed coefficient",
        "One Euro beta: higher follows fast moves with less lag (speed in hand sizes per second).",
        0.0,
        1000.0,
    ),
    SettingSpec(
        "gestures",
        "boolean",
        True,
        "Gestures",
        "Recognise open palm, fist, point, victory, thumbs up/down, OK, pinch and call from "
        "the 3D joints.",
    ),
    SettingSpec(
        "gesture_threshold",
        "number",
        0.6,
        "Gesture confidence",
        "A gesture is reported when its confidence reaches this and kept while it stays above "
        "this minus 0.2 (0-1).",
        0.0,
        1.0,
    ),
    SettingSpec(
        "gesture_frames",
        "integer",
        3,
        "Gesture frames",
        "A new gesture must win this many frames in a row before it is reported (no flicker).",
        1,
        30,
    ),
    SettingSpec(
        "send_hands",
        "boolean",
        True,
        "Send hand records",
        "Notify snapshots of the hands in view (appeared / present / lost records with "
        "keypoints), at once on a change and every notify interval.",
    ),
    SettingSpec(
        "send_enter_leave",
        "boolean",
        True,
        "Send enter / leave events",
        "Notify a hand_enter event when a hand comes into view and hand_leave when it is gone.",
    ),
    SettingSpec(
        "send_gestures",
        "boolean",
        True,
        "Send gesture events",
        "Notify a gesture event when a hand's recognised gesture changes.",
    ),
    SettingSpec(
        "notify_max_rate",
        "number",
        2.0,
        "Maximum notifications per second",
        "At most this many notifications per second reach Actcast; records of the frames in "
        "between are merged into the next one (a flickering hand cannot flood).",
        0.1,
        30.0,
    ),
    SettingSpec(
        "capture_width",
        "integer",
        640,
        "Capture width",
        "Camera frame width in pixels (a size the camera/ISP delivers directly).",
        160,
        1920,
    ),
    SettingSpec(
        "capture_height",
        "integer",
        480,
        "Capture height",
        "Camera frame height in pixels.",
        120,
        1080,
    ),
    SettingSpec(
        "capture_fps",
        "integer",
        15,
        "Capture frame rate",
        "Frames per second asked of the camera.",
        1,
        90,
    ),
    SettingSpec(
        "rotation",
        "integer",
        0,
        "Rotation",
        "Rotate the camera image clockwise by this many degrees.",
        enum=(0, 90, 180, 270),
    ),
    SettingSpec(
        "hflip",
        "boolean",
        False,
        "Horizontal flip",
        "Mirror the camera image left-right (a mirrored image swaps left/right hands; "
        "handedness is corrected for it).",
    ),
    SettingSpec("vflip", "boolean", False, "Vertical flip", "Flip the camera image upside down."),
    SettingSpec(
        "mirrored_camera",
        "boolean",
        False,
        "Mirrored camera",
        "The camera itself delivers a mirror image (selfie view): swap left/right so "
        "events report the anatomical side.",
    ),
    SettingSpec(
        "camera",
        "string",
        "auto",
        "Camera",
        "Capture backend: auto (by OS), v4l2 (USB), unicam (CSI on bullseye) or libcamera "
        "(CSI on bookworm).",
        enum=("auto", "v4l2", "unicam", "libcamera"),
    ),
    SettingSpec(
        "camera_device",
        "string",
        "/dev/video0",
        "Camera device",
        "V4L2 device node for v4l2 / unicam capture.",
    ),
    SettingSpec(
        "num_threads",
        "integer",
        2,
        "Inference threads",
        "TFLite interpreter threads per model.",
        1,
        4,
    ),
    SettingSpec(
        "models_dir",
        "string",
        "",
        "Models folder",
        "Folder with detector.tflite/json and pose.tflite/json; empty = bundled models.",
    ),
    SettingSpec(
        "local_video_server",
        "boolean",
        False,
        "Browser view",
        "Serve the overlay as MJPEG on port 5100 (actfw LocalVideoServer).",
    ),
)
SPECS: dict[str, SettingSpec] = {spec.name: spec for spec in SETTINGS}


@dataclass(frozen=True)
class AppSettings:
    """Validated settings (see `SETTINGS` for meaning, defaults and ranges)."""

    display: bool = False
    score_threshold: float = 0.6
    nms_threshold: float = 0.45
    max_hands: int = 2
    crop_scale: float = 1.2
    notify_interval: float = 1.0
    lost_timeout: float = 0.3
    tracking: bool = True
    detect_interval: int = 10
    track_threshold: float = 0.3
    smoothing: bool = True
    smoothing_min_cutoff: float = 0.5
    smoothing_beta: float = 10.0
    gestures: bool = True
    gesture_threshold: float = 0.6
    gesture_frames: int = 3
    send_hands: bool = True
    send_enter_leave: bool = True
    send_gestures: bool = True
    notify_max_rate: float = 2.0
    capture_width: int = 640
    capture_height: int = 480
    capture_fps: int = 15
    rotation: int = 0
    hflip: bool = False
    vflip: bool = False
    mirrored_camera: bool = False
    camera: str = "auto"
    camera_device: str = "/dev/video0"
    num_threads: int = 2
    models_dir: str = ""
    local_video_server: bool = False

    @property
    def swap_handedness(self) -> bool:
        """True when the processed image is a mirror of reality (mirrored camera XOR hflip)."""
        return self.mirrored_camera != self.hflip

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "settings") -> AppSettings:
        """Defaults overlaid with `values`, each checked; `SettingsError` names the bad one."""
        if not isinstance(values, dict):
            raise SettingsError(f"{source}: expected a JSON object of settings, got {values!r}")
        checked: dict[str, Any] = {}
        for key, value in values.items():
            spec = SPECS.get(key)
            if spec is None:
                log.warning("%s: unknown setting %r ignored", source, key)
                continue
            checked[key] = _check(spec, value, source)
        return cls(**checked)

    @classmethod
    def load(cls, path: str | Path) -> AppSettings:
        """Read an act settings JSON file (`act_settings.json` or ACT_SETTINGS_PATH)."""
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise SettingsError(f"{path}: settings file not found") from None
        except (OSError, ValueError, RecursionError) as error:
            # ValueError covers JSONDecodeError, UnicodeDecodeError and integers too long to
            # convert; RecursionError a file nested too deep
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise SettingsError(f"{path}: not a JSON settings file ({reason})") from None
        return cls.from_dict(values, str(path))

    def replace(self, **changes: Any) -> AppSettings:
        """A copy with some settings changed (each checked like a file value)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return AppSettings.from_dict(values, "override")


_PY_TYPES = {"boolean": (bool,), "integer": (int,), "number": (int, float), "string": (str,)}


def _shown(value: Any, limit: int = 60) -> str:
    """repr(value) cut to `limit` characters (a setting may be a huge string or integer)."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return f"<{type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check(spec: SettingSpec, value: Any, source: str) -> Any:
    where = f"{source}: setting {spec.name!r}"
    allowed = _allowed(spec)
    ok_type = isinstance(value, _PY_TYPES[spec.type]) and not (
        spec.type != "boolean" and isinstance(value, bool)
    )
    if spec.type == "integer" and isinstance(value, float) and value.is_integer():
        value, ok_type = int(value), True
    if not ok_type:
        raise SettingsError(f"{where} = {_shown(value)} has the wrong type; expected {allowed}")
    if isinstance(value, float) and not math.isfinite(value):  # NaN passes every comparison
        raise SettingsError(f"{where} = {_shown(value)} is not a finite number; expected {allowed}")
    if spec.enum is not None and value not in spec.enum:
        raise SettingsError(f"{where} = {_shown(value)} is not allowed; expected {allowed}")
    if (spec.minimum is not None and value < spec.minimum) or (
        spec.maximum is not None and value > spec.maximum
    ):
        raise SettingsError(f"{where} = {_shown(value)} is out of range; expected {allowed}")
    return float(value) if spec.type == "number" else value


def _allowed(spec: SettingSpec) -> str:
    if spec.enum is not None:
        return "one of " + ", ".join(json.dumps(v) for v in spec.enum)
    text = {
        "boolean": "true or false",
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
    }[spec.type]
    if spec.minimum is not None:
        text += f" from {spec.minimum:g} to {spec.maximum:g}"
    return text


def setting_schema() -> dict[str, Any]:
    """The JSON Schema of the act settings (the content of `setting_schema.json`)."""
    properties: dict[str, Any] = {}
    for spec in SETTINGS:
        prop: dict[str, Any] = {
            "title": spec.title,
            "description": spec.description,
            "type": spec.type,
            "default": spec.default,
        }
        if spec.minimum is not None:
            prop["minimum"] = spec.minimum
            prop["maximum"] = spec.maximum
        if spec.enum is not None:
            prop["enum"] = list(spec.enum)
        properties[spec.name] = prop
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "handpose settings",
        "type": "object",
        "properties": properties,
        "required": [],
    }


def _defaults_match() -> None:  # checked once at import: the dataclass and SETTINGS agree
    defaults = {f.name: f.default for f in fields(AppSettings)}
    declared = {spec.name: spec.default for spec in SETTINGS}
    assert defaults == declared, "AppSettings and SETTINGS disagree"


_defaults_match()

if __name__ == "__main__":
    json.dump(setting_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
