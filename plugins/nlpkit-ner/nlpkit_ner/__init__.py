"""nlpkit plugin: Named-entity recognition: CoNLL data, BIO/BIOES, CRF.

A registered skeleton: it loads through the ``nlpkit`` entry point like any plugin; its tasks,
datasets and metrics arrive with issue #6.
"""
