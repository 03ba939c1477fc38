"""The PySide6 window: the only package that imports Qt. A thin skin over ``lfmdesk.core``."""
