"""Real-photo loaders: `voc:`, `yolo:` and `folders:` on tiny trees in each real layout.

The trees are written the way labelImg (Pascal VOC XML beside the image), a Pascal VOC tree
(Annotations/ + JPEGImages/ + ImageSets/Main), Roboflow / Ultralytics YOLO exports and class
folder sets lay them out; every test goes through `open_dataset` as a spec would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from handpose.errors import HandposeError
from models.data.loaders.classmap import ClassMap
from models.data.loaders.yolo import read_class_names
from models.data.spec import open_dataset


def write_image(path: Path, width: int, height: int, value: int = 90) -> Path:
    """A tiny uniform image (JPEG or PNG by the suffix) of `width` x `height`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)
    return path


def voc_xml(filename: str, width: int, height: int, objects: list[tuple[str, tuple]]) -> str:
    """Pascal VOC XML as labelImg writes it; objects are (name, (xmin, ymin, xmax, ymax))."""
    parts = [
        "<annotation>",
        "\t<folder>photos</folder>",
        f"\t<filename>{filename}</filename>",
        f"\t<path>/home/someone/photos/{filename}</path>",
        "\t<source>\n\t\t<database>Unknown</database>\n\t</source>",
        f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n"
        "\t\t<depth>3</depth>\n\t</size>",
        "\t<segmented>0</segmented>",
    ]
    for name, (x0, y0, x1, y1) in objects:
        parts.append(
            f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n"
            "\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n"
            f"\t\t<bndbox>\n\t\t\t<xmin>{x0}</xmin>\n\t\t\t<ymin>{y0}</ymin>\n"
            f"\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>\n\t</object>"
        )
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def labelimg_pair(folder: Path, stem: str, objects, size=(64, 48), suffix=".jpg") -> Path:
    """An image and its labelImg .xml beside it."""
    width, height = size
    write_image(folder / f"{stem}{suffix}", width, height)
    xml = folder / f"{stem}.xml"
    xml.write_text(voc_xml(f"{stem}{suffix}", width, height, objects), encoding="utf-8")
    return xml


def names(dataset) -> list[str]:
    return [dataset[i].name for i in range(len(dataset))]


def boxes(sample) -> list[list[float]]:
    return [h.box.tolist() for h in sample.hands]


def assert_boxes(sample, expected: list[list[float]]) -> None:
    """The sample's boxes are `expected` px (to float32 rounding of normalised YOLO values)."""
    got = np.asarray(boxes(sample), np.float64).reshape(-1, 4)
    np.testing.assert_allclose(got, np.asarray(expected, np.float64), rtol=0, atol=1e-4)


def sides(sample) -> list[str]:
    return [h.handedness for h in sample.hands]


# ---------------------------------------------------------------------------------------- classes


def test_class_map_rules_and_errors():
    classes = ClassMap("a:left; b:right ;x:drop;*:hand")
    assert classes.side("a") == "left"
    assert classes.side("b") == "right"
    assert classes.side("x") is None
    assert classes.side("anything") == "hand"
    assert ClassMap().side("3-hand") == "hand"  # default *:hand
    assert ClassMap("A:LEFT").side("A") == "left"  # the target's case does not matter
    with pytest.raises(HandposeError, match=r"class 'c' is not in classes=a:left;b:right"):
        ClassMap("a:left;b:right").side("c")
    with pytest.raises(HandposeError, match=r"class rule 'a:up' must be NAME:TARGET"):
        ClassMap("a:up")
    with pytest.raises(HandposeError, match=r"class rule 'left' must be NAME:TARGET"):
        ClassMap("left")
    with pytest.raises(HandposeError, match="classes= is empty"):
        ClassMap(" ; ")


# -------------------------------------------------------------------------------------------- voc


def test_voc_labelimg_boxes_in_pixels_every_class_a_hand(tmp_path):
    root = tmp_path / "hands"
    labelimg_pair(
        root / "session1",
        "img_0001",
        [("3-hand", (10, 5, 30, 25)), ("five", (40.5, 20, 70, 60)), ("flat", (12, 7, 12, 20))],
    )
    ds_all = open_dataset(f"voc:{root}", split="all")
    assert len(ds_all) == 1
    sample = ds_all[0]
    assert sample.source == "voc"
    assert sample.name == "session1/img_0001.jpg"
    assert sample.meta == {"annotation": "session1/img_0001.xml"}
    assert (sample.width, sample.height) == (64, 48)
    # the second box is clipped to the 64 x 48 image; the zero-width third is dropped
    assert boxes(sample) == [[10.0, 5.0, 30.0, 25.0], [40.5, 20.0, 64.0, 48.0]]
    assert sides(sample) == ["hand", "hand"]
    assert all(h.score == 1.0 and h.keypoints is None for h in sample.hands)
    assert sample.hands[0].box.dtype == np.float32


def test_voc_classes_map_sides_drop_and_unmapped_class(tmp_path):
    root = tmp_path / "hands"
    labelimg_pair(root, "a", [("lh", (1, 2, 11, 12)), ("face", (20, 20, 40, 40)),
                              ("rh", (30, 4, 50, 24))])  # fmt: skip
    ds = open_dataset(f"voc:{root}?classes=lh:left;rh:right;face:drop", split="all")
    sample = ds[0]
    assert sides(sample) == ["left", "right"]
    assert boxes(sample) == [[1.0, 2.0, 11.0, 12.0], [30.0, 4.0, 50.0, 24.0]]
    # an unmapped class stops the loader at open time, naming the class
    with pytest.raises(HandposeError, match=r"class 'face' is not in classes=lh:left;rh:right"):
        open_dataset(f"voc:{root}?classes=lh:left;rh:right", split="all")
    # `*` maps the rest
    ds = open_dataset(f"voc:{root}?classes=lh:left;*:drop", split="all")
    assert sides(ds[0]) == ["left"]


def test_voc_labelimg_splits_from_list_files(tmp_path):
    root = tmp_path / "hands"
    for k in range(6):
        labelimg_pair(root, f"img{k}", [("hand", (k, k, k + 10, k + 10))])
    # a list names images by file name or by stem
    (root / "test.txt").write_text("img1.jpg\nimg4\n\n", encoding="utf-8")
    assert names(open_dataset(f"voc:{root}", split="test")) == ["img1.jpg", "img4.jpg"]
    # the 4 unlisted images: val is the holdout tail (ceil 5 % = 1: the 3rd), train the rest
    assert names(open_dataset(f"voc:{root}", split="val")) == ["img3.jpg"]
    assert names(open_dataset(f"voc:{root}", split="train")) == [
        "img0.jpg",
        "img2.jpg",
        "img5.jpg",
    ]
    assert len(open_dataset(f"voc:{root}", split="all")) == 6
    # the boxes follow their images through the split
    assert boxes(open_dataset(f"voc:{root}", split="test")[1]) == [[4.0, 4.0, 14.0, 14.0]]
    # a val list ("valid.txt" is read as val) takes its images out of train
    (root / "valid.txt").write_text("img0\n", encoding="utf-8")
    assert names(open_dataset(f"voc:{root}", split="val")) == ["img0.jpg"]
    assert names(open_dataset(f"voc:{root}", split="train")) == [
        "img2.jpg",
        "img3.jpg",
        "img5.jpg",
    ]


def test_voc_roboflow_export_split_folders(tmp_path):
    root = tmp_path / "export"
    for split, stems in (("train", ["a", "b"]), ("valid", ["c"]), ("test", ["d"])):
        for k, stem in enumerate(stems):
            labelimg_pair(root / split, stem, [("five", (1, 2, 30 + k, 40))])
    assert names(open_dataset(f"voc:{root}", split="train")) == ["train/a.jpg", "train/b.jpg"]
    assert names(open_dataset(f"voc:{root}", split="val")) == ["valid/c.jpg"]
    assert names(open_dataset(f"voc:{root}", split="test")) == ["test/d.jpg"]
    assert len(open_dataset(f"voc:{root}", split="all")) == 4
    assert boxes(open_dataset(f"voc:{root}", split="train")[1]) == [[1.0, 2.0, 31.0, 40.0]]


def test_voc_list_names_with_dots_and_tiny_sets(tmp_path):
    root = tmp_path / "export"
    # Roboflow-style names hold dots: the list's bare stem must still match
    labelimg_pair(root, "IMG_7_jpg.rf.0a1b2c", [("hand", (1, 1, 9, 9))])
    labelimg_pair(root, "IMG_8_jpg.rf.3d4e5f", [("hand", (2, 2, 9, 9))])
    labelimg_pair(root, "IMG_9_jpg.rf.6a7b8c", [("hand", (3, 3, 9, 9))])
    (root / "test.txt").write_text("IMG_8_jpg.rf.3d4e5f\n", encoding="utf-8")
    assert names(open_dataset(f"voc:{root}", split="test")) == ["IMG_8_jpg.rf.3d4e5f.jpg"]
    # two unlisted images are too few to hold out (common.holdout_indices): every split has both
    both = ["IMG_7_jpg.rf.0a1b2c.jpg", "IMG_9_jpg.rf.6a7b8c.jpg"]
    assert names(open_dataset(f"voc:{root}", split="train")) == both
    assert names(open_dataset(f"voc:{root}", split="val")) == both


def test_voc_tree_imagesets_and_missing_image(tmp_path):
    root = tmp_path / "VOC2012"
    ann, jpeg, sets = root / "Annotations", root / "JPEGImages", root / "ImageSets" / "Main"
    ann.mkdir(parents=True)
    sets.mkdir(parents=True)
    for k, stem in enumerate(["2008_000001", "2008_000002", "2008_000003", "2008_000004"]):
        write_image(jpeg / f"{stem}.jpg", 80, 60)
        (ann / f"{stem}.xml").write_text(
            voc_xml(f"{stem}.jpg", 80, 60, [("hand", (k, 2 * k, 40 + k, 50))]), encoding="utf-8"
        )
    # an annotation whose image is gone is skipped
    (ann / "2008_000005.xml").write_text(
        voc_xml("2008_000005.jpg", 80, 60, [("hand", (0, 0, 5, 5))]), encoding="utf-8"
    )
    # an annotation without <filename>: its image is found by the xml's stem in JPEGImages/
    write_image(jpeg / "2008_000006.png", 80, 60)
    (ann / "2008_000006.xml").write_text(
        voc_xml("", 80, 60, [("hand", (5, 6, 7, 8))]).replace("<filename></filename>", ""),
        encoding="utf-8",
    )
    (sets / "train.txt").write_text("2008_000001\n2008_000003\n2008_000006\n", encoding="utf-8")
    (sets / "val.txt").write_text("2008_000002\n", encoding="utf-8")
    (sets / "test.txt").write_text("2008_000004\n2008_000005\n", encoding="utf-8")
    train = open_dataset(f"voc:{root}", split="train")
    assert names(train) == [
        "JPEGImages/2008_000001.jpg",
        "JPEGImages/2008_000003.jpg",
        "JPEGImages/2008_000006.png",
    ]
    assert train[1].meta == {"annotation": "Annotations/2008_000003.xml"}
    assert boxes(train[1]) == [[2.0, 4.0, 42.0, 50.0]]
    assert boxes(train[2]) == [[5.0, 6.0, 7.0, 8.0]]
    assert names(open_dataset(f"voc:{root}", split="val")) == ["JPEGImages/2008_000002.jpg"]
    assert names(open_dataset(f"voc:{root}", split="test")) == ["JPEGImages/2008_000004.jpg"]
    assert len(open_dataset(f"voc:{root}", split="all")) == 5


def test_voc_errors_name_the_file(tmp_path):
    root = tmp_path / "bad"
    labelimg_pair(root, "good", [("hand", (1, 1, 5, 5))])
    broken = root / "broken.xml"
    write_image(root / "broken.jpg", 16, 16)
    broken.write_text("<annotation><filename>broken.jpg</filename><object>", encoding="utf-8")
    with pytest.raises(HandposeError, match=r"broken\.xml is not a Pascal VOC XML file"):
        open_dataset(f"voc:{root}", split="all")
    broken.write_text(
        voc_xml("broken.jpg", 16, 16, [("hand", (1, 1, 5, 5))]).replace("<ymax>5</ymax>", ""),
        encoding="utf-8",
    )
    with pytest.raises(HandposeError, match=r"broken\.xml: an <object> without a numeric"):
        open_dataset(f"voc:{root}", split="all")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "lonely.xml").write_text(voc_xml("lonely.jpg", 8, 8, []), encoding="utf-8")
    with pytest.raises(HandposeError, match=r"no Pascal VOC \.xml with its image.*1 xml files"):
        open_dataset(f"voc:{empty}", split="all")


# ------------------------------------------------------------------------------------------- yolo


def write_yolo(images: Path, labels: Path, stem: str, lines: list[str] | None, size=(100, 50)):
    """An image in `images` and (unless `lines` is None) its label file in `labels`."""
    write_image(images / f"{stem}.jpg", *size)
    if lines is not None:
        labels.mkdir(parents=True, exist_ok=True)
        (labels / f"{stem}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_yolo_class_names_in_three_forms(tmp_path):
    assert read_class_names(tmp_path) == []  # no data.yaml
    (tmp_path / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\n\nnc: 2\nnames: ['five', 'four']\n\n"
        "roboflow:\n  workspace: me\n  version: 1\n",
        encoding="utf-8",
    )
    assert read_class_names(tmp_path) == ["five", "four"]
    (tmp_path / "data.yaml").write_text(
        "path: ../datasets/hands\nnames:\n  - five\n  - 'four'\nnc: 2\n", encoding="utf-8"
    )
    assert read_class_names(tmp_path) == ["five", "four"]
    (tmp_path / "data.yaml").write_text(
        'path: hands\ntrain: images/train\nnames:\n  1: four\n  0: "five"\n', encoding="utf-8"
    )
    assert read_class_names(tmp_path) == ["five", "four"]
    (tmp_path / "data.yaml").write_text("names: [five, four]\n", encoding="utf-8")
    with pytest.raises(HandposeError, match=r"data\.yaml: cannot read the names"):
        read_class_names(tmp_path)


def test_yolo_roboflow_layout_boxes_sides_and_splits(tmp_path):
    root = tmp_path / "roboflow"
    root.mkdir()
    (root / "data.yaml").write_text("nc: 2\nnames: ['five', 'four']\n", encoding="utf-8")
    write_yolo(root / "train/images", root / "train/labels", "a",
               ["0 0.5 0.5 0.2 0.4", "1 0.25 0.5 0.5 1.0"])  # fmt: skip
    write_yolo(root / "train/images", root / "train/labels", "b", None)  # no label file
    write_yolo(root / "valid/images", root / "valid/labels", "c", ["1 0.1 0.2 0.1 0.2"])
    write_yolo(root / "test/images", root / "test/labels", "d", ["0 0.9 0.9 0.4 0.4"])
    spec = f"yolo:{root}?classes=five:left;four:right"
    train = open_dataset(spec, split="train")
    assert names(train) == ["train/images/a.jpg", "train/images/b.jpg"]
    a, b = train[0], train[1]
    assert a.source == "yolo" and (a.width, a.height) == (100, 50)
    # normalised cx cy w h -> pixels of the 100 x 50 image
    assert boxes(a) == [[40.0, 15.0, 60.0, 35.0], [0.0, 0.0, 50.0, 50.0]]
    assert sides(a) == ["left", "right"]
    assert all(h.keypoints is None and h.score == 1.0 for h in a.hands)
    assert b.hands == []  # an image without a label file is a negative
    val = open_dataset(spec, split="val")  # valid/ is val
    assert names(val) == ["valid/images/c.jpg"]
    assert_boxes(val[0], [[5.0, 5.0, 15.0, 15.0]])
    assert sides(val[0]) == ["right"]
    test = open_dataset(spec, split="test")
    assert names(test) == ["test/images/d.jpg"]
    assert_boxes(test[0], [[70.0, 35.0, 100.0, 50.0]])  # clipped
    assert len(open_dataset(spec, split="all")) == 4
    # default: every class a hand; a drop rule removes the object
    assert sides(open_dataset(f"yolo:{root}", split="train")[0]) == ["hand", "hand"]
    dropped = open_dataset(f"yolo:{root}?classes=five:drop;four:hand", split="train")[0]
    assert boxes(dropped) == [[0.0, 0.0, 50.0, 50.0]] and sides(dropped) == ["hand"]
    with pytest.raises(HandposeError, match=r"class 'four' is not in classes=five:hand"):
        open_dataset(f"yolo:{root}?classes=five:hand", split="train")


def test_yolo_ultralytics_layout_block_names(tmp_path):
    root = tmp_path / "ultra"
    root.mkdir()
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: lh\n  1: rh\n",
        encoding="utf-8",
    )
    write_yolo(root / "images/train", root / "labels/train", "t1", ["1 0.5 0.5 0.5 0.5"], (40, 20))
    write_yolo(root / "images/train", root / "labels/train", "t2", ["0 0.5 0.5 1 1"], (40, 20))
    write_yolo(root / "images/val", root / "labels/val", "v1", ["0 0.25 0.25 0.5 0.5"], (40, 20))
    spec = f"yolo:{root}?classes=lh:left;rh:right"
    train = open_dataset(spec, split="train")
    assert names(train) == ["images/train/t1.jpg", "images/train/t2.jpg"]
    assert boxes(train[0]) == [[10.0, 5.0, 30.0, 15.0]] and sides(train[0]) == ["right"]
    assert boxes(train[1]) == [[0.0, 0.0, 40.0, 20.0]] and sides(train[1]) == ["left"]
    val = open_dataset(spec, split="val")
    assert names(val) == ["images/val/v1.jpg"]
    assert boxes(val[0]) == [[0.0, 0.0, 20.0, 10.0]] and sides(val[0]) == ["left"]
    with pytest.raises(HandposeError, match=r"no test split"):
        open_dataset(spec, split="test")


def test_yolo_flat_layout_holdout_and_class_indices(tmp_path):
    root = tmp_path / "flat"
    for k in range(5):  # no data.yaml: class names are the indices
        write_yolo(root / "images", root / "labels", f"f{k}", [f"{k % 2} 0.5 0.5 0.5 0.5"])
    # a segment line (more than 4 values) is read by its first four
    (root / "labels" / "f0.txt").write_text("0 0.5 0.5 0.2 0.2 0.1 0.1 0.3 0.3\n")
    spec = f"yolo:{root}?classes=0:left;1:right"
    train = open_dataset(spec, split="train")
    assert names(train) == ["images/f0.jpg", "images/f1.jpg", "images/f2.jpg"]
    assert_boxes(train[0], [[40.0, 20.0, 60.0, 30.0]])
    assert sides(train[0]) == ["left"] and sides(train[1]) == ["right"]
    assert names(open_dataset(spec, split="val")) == ["images/f3.jpg"]
    assert names(open_dataset(spec, split="test")) == ["images/f4.jpg"]
    assert sides(open_dataset(spec, split="test")[0]) == ["left"]
    assert len(open_dataset(spec, split="all")) == 5
    with pytest.raises(HandposeError, match=r"class '1' is not in classes=0:left"):
        open_dataset(f"yolo:{root}?classes=0:left", split="test")


def test_yolo_malformed_lines_name_the_file(tmp_path):
    root = tmp_path / "flat"
    write_yolo(root / "images", root / "labels", "ok", ["0 0.5 0.5 0.5 0.5"])
    write_yolo(root / "images", root / "labels", "bad", ["0 0.5 0.5 0.1 0.1", "0 0.5 abc 0.1 0.1"])
    with pytest.raises(HandposeError, match=r"labels/bad\.txt line 2: expected 'class cx cy w h'"):
        open_dataset(f"yolo:{root}", split="all")
    (root / "labels" / "bad.txt").write_text("0 0.5 0.5\n", encoding="utf-8")
    with pytest.raises(HandposeError, match=r"labels/bad\.txt line 1: expected 'class cx cy w h'"):
        open_dataset(f"yolo:{root}", split="all")
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    with pytest.raises(HandposeError, match=r"no images/ folder"):
        open_dataset(f"yolo:{nothing}", split="all")


# ---------------------------------------------------------------------------------------- folders


def test_folders_every_split_holds_every_class(tmp_path):
    root = tmp_path / "digits"
    for k in range(5):
        write_image(root / "images" / "five" / f"{k}.jpg", 24, 16)
    for k in range(3):
        write_image(root / "images" / "four" / f"{k}.png", 24, 16)
    write_image(root / "images" / "face" / "0.jpg", 24, 16)
    (root / "images" / "notes.txt").write_text("not a class\n")
    spec = f"folders:{root}?classes=five:left;four:right;face:drop"
    expected = {
        "train": ["images/five/0.jpg", "images/five/1.jpg", "images/five/2.jpg",
                  "images/four/0.png"],
        "val": ["images/five/3.jpg", "images/four/1.png"],
        "test": ["images/five/4.jpg", "images/four/2.png"],
    }  # fmt: skip
    for split, want in expected.items():
        ds = open_dataset(spec, split=split)
        assert names(ds) == want, split
        for i in range(len(ds)):
            sample = ds[i]
            assert sample.hands == [] and sample.source == "folders"
            cls = sample.name.split("/")[1]
            side = {"five": "left", "four": "right"}[cls]
            assert sample.meta == {"unlabelled": True, "class": cls, "side": side}
            assert (sample.width, sample.height) == (24, 16)
    assert len(open_dataset(spec, split="all")) == 8
    # default: every class a hand of unknown side, face included
    ds = open_dataset(f"folders:{root}", split="test")
    assert [ds[i].meta["side"] for i in range(len(ds))] == ["hand", "hand", "hand"]
    with pytest.raises(HandposeError, match=r"class 'face' is not in classes=five:left;four:right"):
        open_dataset(f"folders:{root}?classes=five:left;four:right", split="train")
    flat = tmp_path / "flat"
    write_image(flat / "0.jpg", 8, 8)
    with pytest.raises(HandposeError, match=r"no class folders"):
        open_dataset(f"folders:{flat}", split="train")
