"""lfmdesk: a desktop app and CLI for Liquid AI's LFM2.5-VL-450M on MLX."""

__version__ = "0.1.0"
