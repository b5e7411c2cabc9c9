from .base_correlation_loss import BaseCorrelationLoss
from .base_distill_loss import BaseDistillLoss
from .baselines import ChannelWiseDivergenceLoss, FeatureMSELoss
from .change_dice import ChangeDiceLoss
from .correlation import (FeaturePreparation, PreparedPair, batch_correlation_mse,
                          batch_to_positions, class_balanced_position_weights, correlation_kl,
                          correlation_mse, cross_image_correlation_kl,
                          cross_image_correlation_mse, flatten_features, match_spatial,
                          prepare_pair, sample_positions)
from .cross_correlation_loss import CrossCorrelationLoss
from .global_correlation_loss import GlobalCorrelationLoss
from .response_kd_loss import ResponseKDLoss
from .self_correlation_loss import SelfCorrelationLoss
from .weighted_cross_entropy import WeightedCrossEntropyLoss

__all__ = [
    'BaseDistillLoss', 'BaseCorrelationLoss', 'SelfCorrelationLoss', 'CrossCorrelationLoss',
    'GlobalCorrelationLoss', 'ResponseKDLoss', 'FeatureMSELoss', 'ChannelWiseDivergenceLoss',
    'FeaturePreparation', 'PreparedPair', 'prepare_pair', 'match_spatial', 'flatten_features',
    'class_balanced_position_weights', 'batch_to_positions', 'sample_positions',
    'correlation_mse', 'correlation_kl', 'cross_image_correlation_mse',
    'cross_image_correlation_kl', 'batch_correlation_mse', 'WeightedCrossEntropyLoss',
    'ChangeDiceLoss'
]
