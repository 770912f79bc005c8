"""Measurements taken during training for the paper's figures (the figures themselves: ``analysis/`` at the root)."""
from .grad_per_class_hook import GradPerClassHook
from .panoptic_predictions_hook import PanopticPredictionsHook

__all__ = ['GradPerClassHook', 'PanopticPredictionsHook']
