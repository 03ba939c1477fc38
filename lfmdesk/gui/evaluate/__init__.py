"""The evaluation room: File ▸ Evaluate Boxes… (``_dialog``: the options of ``lfmdesk eval``,
progress and Cancel), the report view (``_report_view``: the table, each configuration's images
worst first, ground truth solid and answers dashed on a canvas), the thread that runs the core's
``evaluate_project`` (``_worker``) and the per-variant engine processes it drives
(``_engines``). The work itself is Qt-free: ``lfmdesk.core.evaluate``.
"""
