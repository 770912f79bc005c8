"""DETR's panoptic fusion on hand-made predictions: kept queries, merged stuff, dropped tiny segments, void, the
padded crop and the original size, in mmdet's encoding."""
import torch

from mmdet_plugins.panoptic.fusion import detr_panoptic_fusion

T, K = 2, 4          # things 0-1, stuff 2-3; no-object is class 4, void is 4
OFFSET = 1000


def logits_for(labels, confident=True):
    """Class logits (Q, K + 1) whose softmax picks ``labels`` (K = no-object) with probability ~1 or ~0.5."""
    out = torch.zeros(len(labels), K + 1)
    for i, label in enumerate(labels):
        out[i, label] = 10.0 if confident else 1.0
    return out


def masks_from(owner, q, value=5.0):
    """Mask logits (q, h, w): query owner[y, x] has ``value`` there, the others -value."""
    m = torch.full((q, *owner.shape), -value)
    for i in range(q):
        m[i][owner == i] = value
    return m


def fuse(cls, masks, shape=(8, 8), ori=None, **kw):
    return detr_panoptic_fusion(cls, masks, T, batch_input_shape=shape, img_shape=shape, ori_shape=ori or shape,
                                **kw)


def test_no_confident_query_gives_all_void():
    cls = logits_for([0, 2, K], confident=False)
    out = fuse(cls, torch.randn(3, 8, 8))
    assert out.shape == (8, 8) and (out == K).all()


def test_things_numbered_stuff_merged_and_every_id_decodes():
    owner = torch.zeros(8, 8, dtype=torch.long)
    owner[:, 2:4] = 1      # thing 1 (second instance of class 0? no: class 1)
    owner[:, 4:6] = 2      # stuff 2
    owner[:, 6:] = 3       # stuff 2 again: merged with query 2
    owner[0, 0] = 4        # a no-object query's pixel: not kept, goes to the next best
    cls = logits_for([0, 1, 2, 2, K])
    out = fuse(cls, masks_from(owner, 5))
    assert set(out.unique().tolist()) == {0 + 1 * OFFSET, 1 + 2 * OFFSET, 2}
    assert (out[:, 4:] == 2).all()
    assert (out[:, 2:4] == 1 + 2 * OFFSET).all()
    labels = out % OFFSET
    assert ((labels >= 0) & (labels <= K)).all()


def test_two_instances_of_one_thing_class_stay_apart():
    owner = torch.zeros(8, 8, dtype=torch.long)
    owner[4:] = 1
    out = fuse(logits_for([0, 0]), masks_from(owner, 2))
    assert (out[:4] == 0 + OFFSET).all() and (out[4:] == 0 + 2 * OFFSET).all()


def test_tiny_segments_are_dropped_and_their_pixels_reassigned():
    owner = torch.zeros(8, 8, dtype=torch.long)
    owner[0, :2] = 1       # 2 pixels: at most min_area=4
    masks = masks_from(owner, 2)
    masks[0][owner == 1] = 1.0  # query 0 is the runner-up there
    out = fuse(logits_for([0, 1]), masks)
    assert (out == 0 + OFFSET).all()


def test_everything_tiny_gives_void():
    owner = torch.zeros(2, 2, dtype=torch.long)
    out = fuse(logits_for([0]), masks_from(owner, 1), shape=(2, 2))
    assert (out == K).all()


def test_padding_is_cropped_and_the_map_is_resized_to_the_original_image():
    owner = torch.zeros(8, 8, dtype=torch.long)
    owner[:, 4:] = 1        # query 1 owns only the padded right half
    owner[:2, :4] = 2       # the image (4 x 4 of the 8 x 8 input): query 2 on top, query 0 below
    masks = masks_from(owner, 3)
    out = detr_panoptic_fusion(logits_for([0, 1, 3]), masks, T, batch_input_shape=(8, 8), img_shape=(4, 4),
                               ori_shape=(16, 16))
    assert out.shape == (16, 16)
    assert (out[:8] == 3).all() and (out[8:] == 0 + OFFSET).all()
    assert not (out % OFFSET == 1).any()  # the padded area's query owns nothing


def test_low_resolution_logits_are_upsampled_to_the_padded_input():
    owner = torch.zeros(2, 2, dtype=torch.long)
    owner[:, 1] = 1
    out = fuse(logits_for([2, 3]), masks_from(owner, 2), shape=(8, 8))
    assert (out[:, :3] == 2).all() and (out[:, 5:] == 3).all()
