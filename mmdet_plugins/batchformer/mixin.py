"""The adapter that adds BatchFormerV2 to an MMDetection 3.x ``DetectionTransformer``.

A BatchFormerV2 detector is ``class BFDETR(BatchFormerMixin, DETR)``: the mixin overrides three hooks of the
base detector and leaves everything else (backbone, encoder, decoder, head, matcher, losses) as it is.

Two-stream training (``mode='two_stream'``, the paper's setting), for a batch of B images:

1. ``loss`` repeats the data samples (``samples + samples``) so the head matches and normalises the loss over
   2B images: the loss is the average over the plain and the BatchFormerV2 stream.
2. ``pre_transformer`` repeats the decoder's batched inputs (padding masks, positional encodings, valid ratios).
3. ``forward_encoder`` runs the encoder's own ``forward`` in stages: layers ``0..insert_idx[0]`` at B, then
   ``x -> cat([x, BF(x)])`` (plain stream first), then the remaining layers at 2B with their batched
   arguments repeated. A later entry of ``insert_idx`` applies the module to the second stream only.
   Batched entries of the encoder's output dict (e.g. Deformable DETR's ``memory_mask``) are repeated.

Everything downstream (pre_decoder, decoder, head) is the base detector's code and sees 2B samples; DINO's
denoising queries are drawn once for the B images and repeated (``BFDINO``).
In ``one_stream`` mode the module is applied in place, without duplication. In eval mode, and in any
forward that is not ``loss``, the module is skipped: the model is exactly its base detector.
"""
from __future__ import annotations

import inspect
import warnings
from contextlib import contextmanager
from typing import Dict, Optional

import torch
from torch import Tensor, nn

from .layer import BatchFormerV2Layer, check_insert_idx, repeat_batch

MODES = ('two_stream', 'one_stream', 'off')
LAYER_ARGS = ('embed_dims', 'num_heads', 'feedforward_channels', 'dropout', 'global_batch', 'group_size',
              'padding_aware')
DEFAULT_BATCHFORMER = dict(insert_idx=[0], mode='two_stream', shared=True,
                           num_heads=4, feedforward_channels=256, dropout=0.5)

# Keys, in the decoder inputs from pre_transformer, the encoder outputs and the encoders' keyword arguments,
# whose values have the batch as their first axis; everything else there (spatial_shapes, level_start_index)
# has none. mmdet 3.3.0's DETR, Deformable DETR, Conditional DETR, DAB-DETR and DINO use these names.
BATCHED_KEYS = frozenset({'memory', 'memory_mask', 'memory_pos', 'query_pos', 'key_padding_mask', 'valid_ratios'})


def repeat_batched_entries(inputs: Dict, skip=()) -> Dict:
    """Return a copy of ``inputs`` with every entry named in :data:`BATCHED_KEYS` repeated along the batch."""
    return {k: (repeat_batch(v) if k in BATCHED_KEYS and k not in skip else v) for k, v in inputs.items()}


class BatchFormerMixin:
    """Mixin for an mmdet ``DetectionTransformer`` subclass; put it first in the bases.

    Args:
        batchformer (dict, optional): the BatchFormerV2 setting. Keys:

            - ``insert_idx`` (list[int]): encoder layers after which the module runs. Default ``[0]``.
            - ``mode`` (str): ``'two_stream'`` (default), ``'one_stream'`` or ``'off'`` (the baseline; no
              module is built, so the state dict equals the base detector's).
            - ``shared`` (bool): one module for all insertion points (default) or one per index.
            - ``embed_dims``, ``num_heads``, ``feedforward_channels``, ``dropout``: the layer's sizes
              (defaults: the encoder's width, 4, 256, 0.5, as the official code).
            - ``global_batch`` (bool): under data-parallel training, attend over every rank's images, not only
              this rank's (:mod:`~mmdet_plugins.batchformer.global_batch`). Default False, as the paper.
            - ``group_size`` (int): attend within groups of this many images of the batch (default None: the
              whole batch); ``padding_aware`` (bool): mask padded tokens (default True; False: the official
              unmasked attention). See :class:`~mmdet_plugins.batchformer.layer.BatchFormerV2Layer`.
        *args, **kwargs: passed to the base detector.
    """

    def __init__(self, *args, batchformer: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cfg = dict(DEFAULT_BATCHFORMER)
        cfg.update(batchformer or {})
        unknown = set(cfg) - set(DEFAULT_BATCHFORMER) - set(LAYER_ARGS)
        if unknown:
            raise ValueError(f'batchformer: unknown keys {sorted(unknown)}; valid keys are '
                             f'{sorted(set(DEFAULT_BATCHFORMER) | set(LAYER_ARGS))}.')
        if cfg['mode'] not in MODES:
            raise ValueError(f"batchformer.mode must be one of {MODES}, got {cfg['mode']!r}.")
        self.bf_mode = cfg['mode']
        self.bf_insert_idx = check_insert_idx(cfg['insert_idx'], len(self.encoder.layers))
        self.bf_shared = bool(cfg['shared'])
        layer_cfg = {k: cfg[k] for k in LAYER_ARGS if k in cfg}
        layer_cfg.setdefault('embed_dims', self.encoder.embed_dims)
        if layer_cfg['embed_dims'] != self.encoder.embed_dims:
            raise ValueError(f"batchformer.embed_dims ({layer_cfg['embed_dims']}) must equal the encoder's "
                             f'embed_dims ({self.encoder.embed_dims}).')
        if self.bf_mode == 'off':
            self.batchformer = None
        else:
            num_modules = 1 if self.bf_shared else len(self.bf_insert_idx)
            self.batchformer = nn.ModuleList(BatchFormerV2Layer(**layer_cfg) for _ in range(num_modules))
        self._bf_active = False
        self._bf_warned_single_image = False

    # ----------------------------------------------------------------------------------------------------
    @property
    def bf_two_stream_active(self) -> bool:
        """True inside a two-stream training pass (see :meth:`batchformer_pass`)."""
        return self._bf_active and self.bf_mode == 'two_stream'

    @contextmanager
    def batchformer_pass(self):
        """Apply BatchFormerV2 to the forwards run inside this context (``loss`` uses it).

        Outside it, and always in eval mode, the module is skipped.
        """
        previous = self._bf_active
        self._bf_active = self.batchformer is not None and self.training
        try:
            yield
        finally:
            self._bf_active = previous

    def loss(self, batch_inputs: Tensor, batch_data_samples):
        """As the base detector's ``loss``; in two-stream mode the data samples are repeated (2B)."""
        with self.batchformer_pass():
            if self.bf_two_stream_active:
                batch_data_samples = list(batch_data_samples) * 2
            return super().loss(batch_inputs, batch_data_samples)

    def pre_transformer(self, img_feats, batch_data_samples=None):
        """As the base's; the decoder's inputs are repeated to 2B in two-stream mode."""
        encoder_inputs, decoder_inputs = super().pre_transformer(img_feats, batch_data_samples)
        if self.bf_two_stream_active:
            decoder_inputs = repeat_batched_entries(decoder_inputs)
        return encoder_inputs, decoder_inputs

    def forward_encoder(self, **kwargs) -> Dict:
        """As the base's, with the encoder run in stages around the BatchFormerV2 insertion points."""
        if not self._bf_active:
            return super().forward_encoder(**kwargs)
        encoder = self.encoder
        encoder_forward = encoder.forward
        encoder.forward = lambda *a, **kw: self._encode_with_batchformer(encoder_forward, *a, **kw)
        try:
            outputs = super().forward_encoder(**kwargs)
        finally:
            del encoder.forward
        if self.bf_two_stream_active:
            outputs = repeat_batched_entries(outputs, skip=('memory', ))
        return outputs

    # ----------------------------------------------------------------------------------------------------
    def _encode_with_batchformer(self, encoder_forward, *args, **kwargs) -> Tensor:
        """The encoder's forward, split at the insertion points.

        Args:
            encoder_forward: the encoder's own bound ``forward``.
            *args, **kwargs: the arguments the detector passed to the encoder; ``query`` is ``(B, N, C)``.

        Returns:
            ``(2B, N, C)`` in two-stream mode (plain stream first), else ``(B, N, C)``.
        """
        signature = inspect.signature(encoder_forward)
        arguments = dict(signature.bind(*args, **kwargs).arguments)
        for name, param in signature.parameters.items():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(arguments.pop(name, {}))
        query = arguments.pop('query')
        two_stream = self.bf_mode == 'two_stream'
        if two_stream and query.size(0) == 1 and not self._bf_warned_single_image:
            warnings.warn('BatchFormerV2 two-stream training with one image per GPU: attention across a batch '
                          'of one sample is the identity on the batch axis, so the module cannot relate '
                          'samples. Use 2 or more images per GPU.')
            self._bf_warned_single_image = True

        start = 0
        for n, idx in enumerate(self.bf_insert_idx):
            query = self._run_encoder_layers(encoder_forward, start, idx + 1, query, arguments)
            start = idx + 1
            module = self.batchformer[0 if self.bf_shared else n]
            mask = arguments.get('key_padding_mask')
            if not two_stream:
                query = module(query, mask)
            elif n == 0:
                query = torch.cat([query, module(query, mask)], dim=0)
                arguments = repeat_batched_entries(arguments)
            else:
                half = query.size(0) // 2
                second = module(query[half:], None if mask is None else mask[half:])
                query = torch.cat([query[:half], second], dim=0)
        return self._run_encoder_layers(encoder_forward, start, len(self.encoder.layers), query, arguments)

    def _run_encoder_layers(self, encoder_forward, start: int, stop: int, query: Tensor, arguments: Dict):
        """Run the encoder's own forward over ``layers[start:stop]`` only (its other logic unchanged)."""
        if start >= stop:
            return query
        layers = self.encoder._modules['layers']
        self.encoder._modules['layers'] = layers[start:stop]
        try:
            return encoder_forward(query=query, **arguments)
        finally:
            self.encoder._modules['layers'] = layers
