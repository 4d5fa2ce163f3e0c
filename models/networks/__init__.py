"""Keras 3 networks: MobileNetV2 backbone, SSDLite detector, Pose Proposal Network."""

from models.networks.detector import build_detector, num_boxes, source_grids
from models.networks.pose import build_pose, pose_grid

__all__ = ["build_detector", "build_pose", "num_boxes", "pose_grid", "source_grids"]
