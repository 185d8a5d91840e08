"""GravMap token: the maps of a batch of sub-goals on a TCP-centred grid, encoded by a small 3-D
CNN into one vector per window (the token that conditions position denoising).

Input "subgoal" (B, 4): sub-goal position minus the current TCP position [m] (base-frame axes)
and the sub-goal's gripper openness in [0, 1]. Output (B, out).
"""

from __future__ import annotations

import torch
from torch import nn

from policies.gravmap.maps import GravMapSpec, cost_value, grid_offsets, gripper_value


class GravMapEncoder(nn.Module):
    """(B, 4) relative sub-goals -> (B, 2, G, G, G) maps (cost, gripper) -> (B, out).

    Two stride-2 Conv3d blocks with GroupNorm and Mish, pooled to 2 x 2 x 2, then a linear layer
    with LayerNorm.
    """

    def __init__(self, spec: GravMapSpec, out: int, width: int = 16):
        super().__init__()
        self.spec = spec
        grid = torch.as_tensor(grid_offsets(spec), dtype=torch.float32).reshape(-1, 3)
        self.register_buffer("grid", grid, persistent=False)  # (G^3, 3) [m] around the TCP
        self.conv = nn.Sequential(
            nn.Conv3d(2, width, 3, stride=2, padding=1),
            nn.GroupNorm(4, width),
            nn.Mish(),
            nn.Conv3d(width, 2 * width, 3, stride=2, padding=1),
            nn.GroupNorm(4, 2 * width),
            nn.Mish(),
            nn.AdaptiveAvgPool3d(2),
        )
        self.head = nn.Sequential(nn.Linear(16 * width, out), nn.LayerNorm(out))

    def maps(self, subgoal: torch.Tensor) -> torch.Tensor:
        """(B, 2, G, G, G) cost and gripper maps for relative sub-goals (B, 4)."""
        g = self.spec.grid
        goal = subgoal[:, None, :3].float()  # (B, 1, 3)
        cost = cost_value(self.grid[None], goal, self.spec.rho)  # (B, G^3)
        grip = gripper_value(self.grid[None], goal, subgoal[:, 3:4].float(), self.spec.sigma)
        return torch.stack([cost, grip], dim=1).reshape(-1, 2, g, g, g)

    def forward(self, subgoal: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(self.maps(subgoal)).flatten(1))
