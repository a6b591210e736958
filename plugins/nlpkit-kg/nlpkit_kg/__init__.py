"""nlpkit plugin: Knowledge-graph link prediction.

A registered skeleton: it loads through the ``nlpkit`` entry point like any plugin; its tasks,
datasets and metrics arrive with issue #8.
"""
