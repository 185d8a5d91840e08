"""The diffusion policy family: its temporal U-Net (`unet`) and model (`model`)."""
