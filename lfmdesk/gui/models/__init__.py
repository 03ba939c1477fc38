"""The model in the window: the model bar (pick, download, load), the first-run welcome panel
and the settings panel (sampling and vision tiling).
"""
