"""Dataset formats: one module per format (``_coco``, ``_yolo``, ``_voc``, ``_labelme``), what
they share (``_common``), the table that drives export and import (``_table``), the export
and its checks on the output folder (``_export``), the staged import (``_import``) and the
format a folder looks like (``_sniff``).

May import: ``datasets`` (annotations, project), ``images`` and the top level.
"""
