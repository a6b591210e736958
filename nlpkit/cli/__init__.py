"""The ``nlpkit`` command: the LightningCLI for fit/validate/test/predict and the built-in commands."""
