"""nlpkit plugin: Text generation: causal language models and seq2seq.

A registered skeleton: it loads through the ``nlpkit`` entry point like any plugin; its tasks,
datasets and metrics arrive with issue #4.
"""
