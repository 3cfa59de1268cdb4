"""What both halves share, without TensorFlow: typed errors (errors.py), atomic writes (atomic.py),
image shape and grids (images.py), latent draws (latents.py), parity figures (parity.py), the
format registry (formats.py), keeping TensorFlow's start-up noise quiet (quiet.py) and the signals
that stop a command (signals.py)."""
