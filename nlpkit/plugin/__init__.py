"""The plugin contract: hookspecs, registries and the loader, the errors, file writes and class paths every layer
uses. It imports nothing of the other layers."""
