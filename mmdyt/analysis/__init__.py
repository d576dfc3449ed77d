"""Measurement: FLOPs of what actually ran, speed and training cost."""
from .benchmark import (dense_baseline, force_activation_rate,
                        linear_kernel_times, summarize, time_interleaved,
                        training_step_cost)
from .builder import build_model, load_config
from .flops import count_parameters, measure_flops, tensor_forward

__all__ = [
    'dense_baseline', 'force_activation_rate', 'linear_kernel_times', 'summarize',
    'time_interleaved', 'training_step_cost', 'build_model', 'load_config',
    'count_parameters', 'measure_flops', 'tensor_forward'
]
