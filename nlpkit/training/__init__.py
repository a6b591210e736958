"""Training: the Task (a LightningModule), transfer from pretrained weights, callbacks, checkpoints, metrics and
schedules."""
