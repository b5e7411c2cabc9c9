from .distill_gradient_ratio_hook import DistillGradientRatioHook
from .distill_weight_schedule_hook import DistillWeightScheduleHook, distill_weight_scale
from .prediction_writer_hook import CDPredictionWriterHook
from .student_checkpoint_hook import StudentCheckpointHook

__all__ = [
    'CDPredictionWriterHook', 'StudentCheckpointHook', 'DistillWeightScheduleHook',
    'DistillGradientRatioHook', 'distill_weight_scale'
]
