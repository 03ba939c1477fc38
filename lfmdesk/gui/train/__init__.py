"""The window's training room: "Train on this project…" and the adapters in the model bar.

Owns the train dialog (labels, steps, a live loss plot, Cancel, the held-out report) in
``_dialog``, the loss plot widget drawn with QPainter in ``_plot``, the Qt wrapper around the
training child process (``core.train.TrainingProcess``) in ``_runner``, and the model-bar rows
for finished adapters, listed under their base model, in ``_rows``. Training never runs in the
window's process: MLX stays in the child.
"""
