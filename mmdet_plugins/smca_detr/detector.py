"""SMCA-DETR: DETR with the spatially modulated co-attention decoder (Gao et al., ICCV 2021, arXiv 2101.07448).

Single-scale SMCA is DETR with another decoder (:class:`~mmdet_plugins.smca_detr.decoder.SMCATransformerDecoder`)
and a head that predicts boxes relative to the decoder's centres (mmdet's ``ConditionalDETRHead``, focal loss, as
the official code). Like mmdet's ``ConditionalDETR`` it overrides a few hooks of ``DETR``: the layers it builds,
the decoder inputs (the feature map's shape, for the spatial prior) and the decoder call (which also returns the
centres as ``references``).
"""
from __future__ import annotations

from typing import Dict, Tuple

from mmdet.models.detectors import DETR
from mmdet.models.layers import DetrTransformerEncoder, SinePositionalEncoding
from mmdet.registry import MODELS
from torch import Tensor, nn

from .decoder import SMCATransformerDecoder


@MODELS.register_module()
class SMCADETR(DETR):
    """Single-scale SMCA (module docstring). Arguments as mmdet's ``DETR``; ``decoder`` configures
    :class:`SMCATransformerDecoder` (DETR's decoder arguments plus ``beta``)."""

    def _init_layers(self) -> None:
        """DETR's layers with the SMCA decoder."""
        self.positional_encoding = SinePositionalEncoding(**self.positional_encoding)
        self.encoder = DetrTransformerEncoder(**self.encoder)
        self.decoder = SMCATransformerDecoder(**self.decoder)
        self.embed_dims = self.encoder.embed_dims
        self.query_embedding = nn.Embedding(self.num_queries, self.embed_dims)  # the object queries O_q
        if self.positional_encoding.num_feats * 2 != self.embed_dims:
            raise ValueError(f'SMCADETR: embed_dims ({self.embed_dims}) must be twice the positional '
                             f'encoding\'s num_feats ({self.positional_encoding.num_feats})')

    def init_weights(self) -> None:
        """DETR's init (xavier on every matrix of the transformer), then SMCA's offsets 0 and scales 1."""
        super().init_weights()
        self.decoder.reset_spatial_parameters()

    def pre_transformer(self, img_feats: Tuple[Tensor], batch_data_samples=None) -> Tuple[Dict, Dict]:
        """As DETR's; the decoder inputs also carry ``spatial_shape``, the ``(h, w)`` of the feature map."""
        encoder_inputs, decoder_inputs = super().pre_transformer(img_feats, batch_data_samples)
        decoder_inputs['spatial_shape'] = tuple(img_feats[-1].shape[-2:])
        return encoder_inputs, decoder_inputs

    def forward_decoder(self, query: Tensor, query_pos: Tensor, memory: Tensor, memory_mask: Tensor,
                        memory_pos: Tensor, spatial_shape: Tuple[int, int]) -> Dict:
        """Decode with spatially modulated co-attention.

        Args:
            query, query_pos: ``(B, Q, C)`` content (zeros) and learnt object queries.
            memory, memory_pos: ``(B, HW, C)`` encoder output and its positional encoding.
            memory_mask: ``(B, HW)`` padding mask (True: padding) or None.
            spatial_shape: ``(h, w)`` of the feature map.

        Returns:
            dict: ``hidden_states`` ``(num_layers, B, Q, C)`` and ``references`` ``(B, Q, 2)`` (normalised
            centres), the inputs of ``ConditionalDETRHead``.
        """
        hidden_states, references = self.decoder(
            query=query, key=memory, value=memory, query_pos=query_pos, key_pos=memory_pos,
            key_padding_mask=memory_mask, spatial_shape=spatial_shape)
        return dict(hidden_states=hidden_states, references=references)
