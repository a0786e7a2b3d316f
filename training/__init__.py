"""Training: the generator and the deblurring CNN (single process or DDP under torchrun)."""

KINDS = ("generator", "deblur")  # what `speech2vid train` trains: the networks of MODEL.md
