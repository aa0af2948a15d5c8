"""The architectures of the forward-learning variants, trained end to end with backprop."""
