"""Evaluation: how good the boxes are, per model variant, tiling and decoding, on a project.

Owns the box metrics (``_metrics``: IoU, one-to-one greedy matching, precision/recall/F1, mean
IoU, Acc@0.5), COCO AP computed as pycocotools does (``_coco_ap``, with the rank-score
convention), the configurations compared (``_configs``), the answer cache that makes re-runs
free and resumable (``_cache``), scoring (``_scoring``), the report (``_report``: table, CSV,
JSON) and the generator that runs it all (``_runner``: ``evaluate_project`` yields the frozen
events of ``_events``).

May import: ``datasets`` (projects, ground truth), ``engine`` (requests), ``answers``,
``images``, the engine protocol of ``live`` and the top level. Nothing in the core imports it.
Engines come from the caller (``open_engine(variant)``): the local engine, the engine process
or a remote backend.
"""
