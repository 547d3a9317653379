"""What several methods share and none registers: the momentum-target skeleton (MoCo, BYOL,
MoCo v3), the two-view projection (Barlow Twins, VICReg), multi-crop (SwAV, DINO) and the
encoder-decoder reconstruction base (autoencoders, VAE, colorization, ...)."""
