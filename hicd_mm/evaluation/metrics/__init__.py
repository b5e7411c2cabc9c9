from .change_metric import (ChangeMetric, average_precision_from_histograms,
                            change_probability, change_scores, confusion_counts,
                            probability_histograms)

__all__ = [
    'ChangeMetric', 'change_scores', 'confusion_counts', 'change_probability',
    'probability_histograms', 'average_precision_from_histograms'
]
