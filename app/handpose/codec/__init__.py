"""Pure-numpy encode/decode shared by training, evaluation and the app (no TensorFlow).

- `handpose.codec.boxes`: SSD default boxes, box encoding/matching, decoding with per-class NMS.
- `handpose.codec.ppn`: Pose Proposal Network grid targets and keypoint/bone decoding.
- `handpose.codec.skeleton3d`: 3D joints from bone directions and back, mirroring.
"""
