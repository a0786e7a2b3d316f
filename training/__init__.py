"""Training: the generator and the deblurring CNN (single process or DDP under torchrun)."""
