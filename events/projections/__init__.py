"""Read models derived from the log, each kept by a projection runner."""
