"""Annotations and projects: boxes a person or the model made (``_annotations``), a folder of
images with its ``.lfmdesk`` store (``_project``, ``_status``), resumable Detect over a whole
project (``_batch``, with several images answered together by ``_detect_many``) and dataset
formats in and out (``formats/``).

May import: ``engine`` (request types), ``answers``, ``images`` and the top level. Never
``chat``, ``live`` or ``process``.
"""
