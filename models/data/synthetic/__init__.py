"""The synthetic hand renderer: the offline default training data (pure numpy + Pillow).

- `SyntheticHands(count, seed, task, image_size, gestures)`: a deterministic sequence of
  `models.data.sample.Sample` (detection scenes or one-hand pose crops), see `dataset`.
- `render_clip(n_frames, seed, size, fps, hands, gestures)`: a smooth animation, see `clip`.
- `GESTURES`: the named gesture presets (joint angles), see `kinematics`.
"""

from models.data.synthetic.clip import render_clip
from models.data.synthetic.dataset import SyntheticHands
from models.data.synthetic.kinematics import GESTURES

__all__ = ["GESTURES", "SyntheticHands", "render_clip"]
