"""Model configs: the dataclass every model is built from, and the presets in configs/model/."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import OmegaConf

from ia_world.config import CONFIG_DIR, check_range, to_dataclass
from ia_world.errors import ConfigError
from ia_world.tokens import TokenGrid


@dataclass
class ModelConfig:
    """Grid (frames, size, tubelet_t, patch), encoder and predictor widths/depths."""

    name: str = "tiny"  # preset name (configs/model/<name>.yaml)
    frames: int = 16  # clip length in frames
    size: int = 64  # frame height = width in px (must match the data)
    tubelet_t: int = 2  # frames per tubelet token
    patch: int = 8  # tubelet height = width in px
    embed_dim: int = 96  # encoder width D
    depth: int = 2  # encoder blocks
    num_heads: int = 3  # encoder attention heads
    pred_dim: int = 48  # predictor width
    pred_depth: int = 2  # predictor blocks
    pred_heads: int = 3  # predictor attention heads
    mlp_ratio: float = 4.0  # MLP width / model width
    learnable_pos: bool = False  # learned instead of fixed 3-D sin-cos positions

    def validate(self) -> None:
        """Raise ConfigError on sizes that cannot build a model."""
        for key, high in (("frames", 1024), ("size", 1024), ("tubelet_t", 64), ("patch", 256),
                          ("embed_dim", 8192), ("depth", 256), ("num_heads", 256),
                          ("pred_dim", 8192), ("pred_depth", 256), ("pred_heads", 256)):
            check_range(key, getattr(self, key), 1, high)
        check_range("mlp_ratio", self.mlp_ratio, 0.25, 64.0)
        if self.embed_dim % self.num_heads or self.pred_dim % self.pred_heads:
            raise ConfigError(f"embed_dim={self.embed_dim} / pred_dim={self.pred_dim} must "
                              f"divide by num_heads={self.num_heads} / pred_heads="
                              f"{self.pred_heads}")
        try:
            TokenGrid(self.frames, self.size, self.tubelet_t, self.patch)
        except ValueError as error:
            raise ConfigError(f"frames={self.frames}, size={self.size}, tubelet_t="
                              f"{self.tubelet_t}, patch={self.patch}: {error}") from None

    @property
    def grid(self) -> TokenGrid:
        """The tubelet token grid this model reads."""
        return TokenGrid(self.frames, self.size, self.tubelet_t, self.patch)


def preset(name: str) -> ModelConfig:
    """The ModelConfig of `configs/model/<name>.yaml` (tiny, small, base)."""
    path = CONFIG_DIR / "model" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"model preset {name!r} not found in {path.parent} (known: {known})")
    return to_dataclass(OmegaConf.load(path), ModelConfig)
