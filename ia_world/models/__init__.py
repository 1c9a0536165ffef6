"""IA-JEPA models: video ViT encoder, predictor, the JEPA wrapper and the presets."""

from ia_world.models.encoder import VideoEncoder
from ia_world.models.jepa import IAJEPA, split_mask
from ia_world.models.predictor import Predictor
from ia_world.models.presets import ModelConfig, preset

__all__ = ["IAJEPA", "ModelConfig", "Predictor", "VideoEncoder", "preset", "split_mask"]
