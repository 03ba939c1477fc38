"""Small Qt helpers every room of the window uses: Pillow/Qt image conversion (``_qtimage``),
decoding off the GUI thread (``_image_loader``), pool jobs (``_jobs``), window state
(``_ui_state``), the shiboken refcount guard (``_refcount_guard``), garbage collection on the
GUI thread only (``_gc``), the display check made before Qt starts (``_display``), files the
system asks the app to open (``_file_open``) and the About dialog (``_about``).
"""
