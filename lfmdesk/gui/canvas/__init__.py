"""The image canvas: the picture, editable boxes (``_box_items``), detections, tags and the
tiling overlay (``_items``), and the editing gestures (``_edit``) on ``_canvas.ImageCanvas``.
"""
