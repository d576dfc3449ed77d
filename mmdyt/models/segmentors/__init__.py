"""Segmentation task glue for mmsegmentation (imported only when mmseg is
installed): the DyT segmentor and its FLOPs count."""
from .encoder_decoder import DyTEncoderDecoder
from .flops import segmentor_flops

__all__ = ['DyTEncoderDecoder', 'segmentor_flops']
