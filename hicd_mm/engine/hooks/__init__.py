from .prediction_writer_hook import CDPredictionWriterHook

__all__ = ['CDPredictionWriterHook']
