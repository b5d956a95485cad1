"""Models: the paper's CIFAR ResNet-18 and small MNIST-1D networks (configs pick them by _target_)."""
