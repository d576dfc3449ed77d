"""Measurement: FLOPs of what actually ran, speed and training cost."""
from ..models.task_model import force_activation_rate, forced_activation_rate, tensor_forward
from .baselines import dense_baseline
from .builder import build_model, load_config
from .flops import count_parameters, measure_flops
from .kernels import linear_kernel_times
from .timing import summarize, time_interleaved
from .training_cost import training_step_cost

__all__ = [
    'dense_baseline', 'force_activation_rate', 'forced_activation_rate', 'linear_kernel_times',
    'summarize', 'time_interleaved', 'training_step_cost', 'build_model', 'load_config',
    'count_parameters', 'measure_flops', 'tensor_forward'
]
