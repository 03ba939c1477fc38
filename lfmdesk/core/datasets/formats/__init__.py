"""Dataset formats: one module per format (``_coco``, ``_yolo``, ``_voc``, ``_labelme``), what
they share (``_common``) and the table that drives export and import (``_table``).

May import: ``datasets`` (annotations, project), ``images`` and the top level.
"""
