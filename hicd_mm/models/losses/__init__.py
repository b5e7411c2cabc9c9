from .baselines import ChannelWiseDivergenceLoss, FeatureMSELoss
from .change_dice import ChangeDiceLoss
from .correlation import (BaseCorrelationLoss, CrossCorrelationLoss, GlobalCorrelationLoss,
                          SelfCorrelationLoss, batch_to_positions, correlation_kl,
                          correlation_kl_explicit, correlation_mse, correlation_mse_explicit,
                          cross_correlation_kl, cross_correlation_kl_explicit,
                          cross_correlation_mse, cross_correlation_mse_explicit,
                          flatten_features, global_correlation_kl,
                          global_correlation_kl_explicit, global_correlation_mse,
                          global_correlation_mse_explicit, match_spatial, sample_positions,
                          self_correlation_kl, self_correlation_kl_explicit,
                          self_correlation_mse, self_correlation_mse_explicit,
                          shared_feature_preparation)
from .weighted_cross_entropy import WeightedCrossEntropyLoss

__all__ = [
    'BaseCorrelationLoss', 'SelfCorrelationLoss', 'CrossCorrelationLoss',
    'GlobalCorrelationLoss', 'FeatureMSELoss', 'ChannelWiseDivergenceLoss', 'match_spatial',
    'flatten_features', 'batch_to_positions', 'sample_positions', 'correlation_mse',
    'correlation_mse_explicit', 'correlation_kl', 'correlation_kl_explicit',
    'self_correlation_mse', 'self_correlation_mse_explicit', 'cross_correlation_mse',
    'cross_correlation_mse_explicit', 'global_correlation_mse',
    'global_correlation_mse_explicit', 'self_correlation_kl', 'self_correlation_kl_explicit',
    'cross_correlation_kl', 'cross_correlation_kl_explicit', 'global_correlation_kl',
    'global_correlation_kl_explicit', 'shared_feature_preparation', 'WeightedCrossEntropyLoss',
    'ChangeDiceLoss'
]
