"""Pictures in and out: loading any supported file as the oriented RGB image the model sees
(``_load``), screen capture (``_capture``) and drawing detections onto a copy (``_draw``).

May import: ``answers`` (for the detection type it draws) and the top level. Never MLX.
"""
