from .change_metric import ChangeMetric, change_scores, confusion_counts

__all__ = ['ChangeMetric', 'change_scores', 'confusion_counts']
