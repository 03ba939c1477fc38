"""Small Qt helpers every room of the window uses: Pillow/Qt image conversion (``_qtimage``),
decoding off the GUI thread (``_image_loader``), pool jobs (``_jobs``), window state
(``_ui_state``) and the shiboken refcount guard (``_refcount_guard``).
"""
