"""The bundled models on real photographs (`../shared/data/real_hands`, test splits only).

A guard for re-bundling: the first 40 test images of each set with human boxes, recall at the
app's threshold, AP@0.5 and false boxes per 100 images. Measured on these images (int8):

| set | bundled (ImageNet, 2026-12-03) recall / AP / false | bundled before (2026-11-26) |
|---|---|---|
| subhih | 0.902 / 0.999 / 0.0 | 0.683 / 0.810 / 10.0 |
| hand_gestures | 0.902 / 0.929 / 2.5 | 0.707 / 0.821 / 2.5 |
| asl_letters | 0.875 / 0.974 / 0.0 | 0.775 / 0.860 / 0.0 |
| glove_or_bare_hand | 1.000 / 0.996 / 2.5 | 0.825 / 0.870 / 7.5 |
| gloves_annotated (small, gloved) | 0.608 / 0.709 / 2.5 | 0.000 / 0.001 / 2.5 |

The bounds sit a few points under the bundled models and above the models bundled before on
every set (each row fails them on recall and AP). The full test splits with MediaPipe beside
them: the model card.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from handpose.paths import DEFAULT_MODELS_DIR
from models.commands import compare
from models.data.spec import open_dataset

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_hands"

#: set -> (spec, least recall, least AP@0.5); at most 5 false boxes per 100 images everywhere
SETS = {
    "subhih": (f"voc:{REAL / 'subhih_hands'}?limit=40", 0.80, 0.93),
    "hand_gestures": (f"yolo:{REAL / 'hand_gestures'}?limit=40", 0.85, 0.90),
    "asl_letters": (f"yolo:{REAL / 'asl_letters'}?limit=40", 0.82, 0.92),
    "glove_or_bare_hand": (f"yolo:{REAL / 'glove_or_bare_hand'}?limit=40", 0.92, 0.95),
    "gloves_annotated": (f"yolo:{REAL / 'gloves_annotated'}?limit=40", 0.50, 0.62),
}
MAX_FALSE_PER_100 = 5.0


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real photos not found at {REAL}")
@pytest.mark.parametrize("name", sorted(SETS))
def test_bundled_models_find_real_hands(name):
    spec, least_recall, least_ap = SETS[name]
    dataset = open_dataset(spec, split="test")
    samples = [dataset[i] for i in range(len(dataset))]
    assert len(samples) == 40 and all(s.hands for s in samples)
    predictions, threshold = compare.run_models(str(DEFAULT_MODELS_DIR), samples, threads=1)
    row = compare.score_set([s.hands for s in samples], predictions, threshold, iou=0.5)
    assert row["recall"] >= least_recall, row
    assert row["ap50"] >= least_ap, row
    assert row["false_per_100"] <= MAX_FALSE_PER_100, row
