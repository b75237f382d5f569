"""DyGen: learning from noisy labels via dynamics-enhanced generative modelling."""
