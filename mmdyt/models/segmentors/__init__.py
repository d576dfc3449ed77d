"""Segmentation task glue for mmsegmentation (imported only when mmseg is
installed): the DyT segmentor, the label-map check, FLOPs counting."""
from .encoder_decoder import DyTEncoderDecoder
from .flops import segmentor_flops
from .transforms import CheckLabelRange

__all__ = ['CheckLabelRange', 'DyTEncoderDecoder', 'segmentor_flops']
