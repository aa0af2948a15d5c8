"""Our blocks and read-out take the same steps as Hinton's released Matlab FF code.

The reference below re-implements, in float64 numpy, one minibatch of that code's update:
its gradient of the goodness is h (not 2h), it adds the peer-normalisation pull to every
unit's gradient, smooths gradients with 0.9 and applies the weight cost outside the smoothing.
A recipe states the Matlab learning rate 0.01 and weight cost 0.001 as lr 0.005 and weight
decay 0.002 here, since the true gradient of the batch-mean loss is twice the Matlab one.
"""

import numpy as np
import torch

from forwardforward.layers import FFLinear
from forwardforward.network import FFNetwork
from forwardforward.optim import OptimizerConfig
from forwardforward.readout import LinearReadout

MATLAB_LR, MATLAB_WC, PEER = 0.01, 0.001, 0.03
SUP_LR, SUP_WC = 0.1, 0.003


def normalize_rows(a):
    return a / (1e-100 + np.sqrt((a**2).mean(axis=1, keepdims=True)))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def matlab_layers_step(weights, biases, means, smoothed_w, smoothed_b, x_pos, x_neg):
    """One minibatch of the Matlab hidden-layer update; arrays are updated in place."""
    n = x_pos.shape[0]
    grads_w, grads_b = [], []
    pos_in, neg_in = normalize_rows(x_pos), normalize_rows(x_neg)
    for l, (w, b) in enumerate(zip(weights, biases)):
        units = w.shape[1]
        s_pos = np.maximum(0, pos_in @ w + b)
        p_pos = sigmoid((s_pos**2).sum(axis=1) - units)
        d_pos = (1 - p_pos)[:, None] * s_pos
        means[l][:] = 0.9 * means[l] + 0.1 * s_pos.mean(axis=0)
        d_pos = d_pos + PEER * (means[l].mean() - means[l])
        s_neg = np.maximum(0, neg_in @ w + b)
        p_neg = sigmoid((s_neg**2).sum(axis=1) - units)
        d_neg = -p_neg[:, None] * s_neg
        grads_w.append(pos_in.T @ d_pos + neg_in.T @ d_neg)
        grads_b.append(d_pos.sum(axis=0) + d_neg.sum(axis=0))
        pos_in, neg_in = normalize_rows(s_pos), normalize_rows(s_neg)
    for l in range(len(weights)):
        smoothed_w[l][:] = 0.9 * smoothed_w[l] + 0.1 * grads_w[l] / n
        smoothed_b[l][:] = 0.9 * smoothed_b[l] + 0.1 * grads_b[l] / n
        biases[l][:] = biases[l] + MATLAB_LR * smoothed_b[l]
        weights[l][:] = weights[l] + MATLAB_LR * (smoothed_w[l] - MATLAB_WC * weights[l])


def test_blocks_follow_matlab_update():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    widths = [16, 12, 8]
    config = OptimizerConfig(name="smoothed_sgd", lr=MATLAB_LR / 2, momentum=0.9, weight_decay=2 * MATLAB_WC)
    blocks = []
    for fan_in, units in zip(widths[:-1], widths[1:]):
        block = FFLinear(fan_in, units, peer_strength=PEER).double()
        block.configure_optimizer(config)
        blocks.append(block)
    network = FFNetwork(blocks, num_classes=2)

    weights = [b.module.weight.detach().numpy().T.copy() for b in blocks]
    biases = [b.module.bias.detach().numpy().copy() for b in blocks]
    means = [np.full(w.shape[1], 0.5) for w in weights]
    smoothed_w = [np.zeros_like(w) for w in weights]
    smoothed_b = [np.zeros_like(b) for b in biases]

    for _ in range(4):
        # Inputs scaled so that goodness sits near the threshold and both terms matter.
        x_pos = rng.random((10, widths[0])) * 3
        x_neg = rng.random((10, widths[0])) * 3
        matlab_layers_step(weights, biases, means, smoothed_w, smoothed_b, x_pos, x_neg)
        h_pos = network.normalize(torch.from_numpy(x_pos))
        h_neg = network.normalize(torch.from_numpy(x_neg))
        for block in blocks:
            a_pos, a_neg, _ = block.train_step(h_pos, h_neg)
            h_pos, h_neg = network.normalize(a_pos), network.normalize(a_neg)

    for block, w, b, m in zip(blocks, weights, biases, means):
        np.testing.assert_allclose(block.module.weight.detach().numpy().T, w, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(block.module.bias.detach().numpy(), b, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(block.peer.running_mean.numpy(), m, rtol=1e-10, atol=1e-12)


def test_readout_follows_matlab_softmax_update():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    readout = LinearReadout([6, 5, 4], num_classes=3, skip_first=1, bias=False).double()
    readout.configure_optimizer(OptimizerConfig(name="smoothed_sgd", lr=SUP_LR, momentum=0.9, weight_decay=SUP_WC))
    w = np.zeros((9, 3))
    smoothed = np.zeros_like(w)
    for _ in range(3):
        acts = [torch.from_numpy(rng.random((7, k)) * 2) for k in (6, 5, 4)]
        labels = rng.integers(0, 3, 7)
        features = np.concatenate([normalize_rows(a.numpy()) for a in acts[1:]], axis=1)
        logits = features @ w
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        targets = np.eye(3)[labels]
        smoothed = 0.9 * smoothed + 0.1 * features.T @ (targets - probs) / 7
        w = w + SUP_LR * (smoothed - SUP_WC * w)
        readout.train_step(acts, torch.from_numpy(labels))
    np.testing.assert_allclose(readout.linear.weight.detach().numpy().T, w, rtol=1e-9, atol=1e-12)
