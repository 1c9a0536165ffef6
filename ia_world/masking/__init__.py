"""Masking strategies (DESIGN.md section 4): which tubelet tokens the predictor must predict."""

from ia_world.masking.strategies import STRATEGIES, MaskConfig, make_mask_fn, num_hidden, saliency

__all__ = ["STRATEGIES", "MaskConfig", "make_mask_fn", "num_hidden", "saliency"]
