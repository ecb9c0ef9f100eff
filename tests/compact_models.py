"""Small networks built from the compact architectures' blocks, shared by
the host tests (tests/jobs) and the board tests (tests/firmware): each
exercises one family of operators end to end."""

import torch
import torch.nn as nn
import torch.nn.functional as F


def separable_net():
    """MobileNet's depthwise-separable block: a strided stem, a depthwise
    3x3 (BN, ReLU6), a pointwise 1x1, a strided depthwise with multiplier 2."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 16, 1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, groups=16), nn.ReLU6(),  # multiplier 2
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )


class ResidualNet(nn.Module):
    """Two residual joins (ResNet's basic block: conv-BN-ReLU-conv-BN, + the
    block input, ReLU), a branch read twice, and a join of two convs."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.conv1, self.bn1 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.side = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        x = F.relu(x + y)
        x = self.side(x) + x
        return self.fc(torch.flatten(F.max_pool2d(x, 2), 1))


class ShuffleUnit(nn.Module):
    """ShuffleNet's unit: a grouped 1x1 that narrows, a channel shuffle, a
    depthwise 3x3 with BN, a grouped 1x1 that widens again, a residual add;
    then a grouped 3x3 (4 groups) before the head. (BN on the depthwise
    only: one short epoch still trains it.)"""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 12, 3, stride=2, padding=1)
        self.narrow = nn.Conv2d(12, 6, 1, groups=3)
        self.depthwise, self.bn = nn.Conv2d(6, 6, 3, padding=1, groups=6), nn.BatchNorm2d(6)
        self.widen = nn.Conv2d(6, 12, 1, groups=3)
        self.grouped = nn.Conv2d(12, 16, 3, padding=1, groups=4)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        y = F.relu(self.narrow(x))
        y = self.bn(self.depthwise(F.channel_shuffle(y, 3)))
        x = F.relu(x + self.widen(y))
        x = F.relu(self.grouped(x))
        return self.fc(torch.flatten(F.max_pool2d(x, 2), 1))


class FireNet(nn.Module):
    """SqueezeNet's Fire module: a 1x1 squeeze, then 1x1 and 3x3 expands
    joined by torch.cat along the channels (each branch its own
    quantization: the concatenation rescales)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.squeeze = nn.Conv2d(8, 8, 1)
        self.expand1, self.expand3 = nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = self.squeeze(F.relu(self.stem(x)))
        x = torch.cat([self.expand1(x), F.relu(self.expand3(x))], 1)
        return self.fc(torch.flatten(F.max_pool2d(x, 2), 1))


class WideFireNet(nn.Module):
    """A Fire module whose expands are the model's largest tensors: the
    planner joins expand1's output in place at the start of the
    concatenation's buffer (the peak is then squeeze + joined + expand3,
    not expand1 + expand3 + joined)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.squeeze = nn.Conv2d(4, 4, 1)
        self.expand1, self.expand3 = nn.Conv2d(4, 16, 1), nn.Conv2d(4, 16, 3, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = F.relu(self.squeeze(F.relu(self.stem(x))))
        x = torch.cat([F.relu(self.expand1(x)), F.relu(self.expand3(x))], 1)
        return self.fc(torch.flatten(F.max_pool2d(x, 2), 1))
