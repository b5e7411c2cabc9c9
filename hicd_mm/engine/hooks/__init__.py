from .prediction_writer_hook import CDPredictionWriterHook
from .student_checkpoint_hook import StudentCheckpointHook

__all__ = ['CDPredictionWriterHook', 'StudentCheckpointHook']
