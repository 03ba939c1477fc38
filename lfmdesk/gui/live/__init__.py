"""Live mode in the window: camera and video sources (``_sources``), the loop where the newest
frame wins (``_loop``), the preview (``_view``), the Live dock (``_panel``), the wiring
(``_mode``) and an MP4 writer for tests and demos (``_video_writer``).
"""
