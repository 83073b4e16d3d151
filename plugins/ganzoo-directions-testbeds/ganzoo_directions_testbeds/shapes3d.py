"""``shapes3d``: a room with one object, on the factor grid of DeepMind's 3D Shapes (Burgess & Kim 2018).

Factors, in the data set's order, with its number of values:

    floor_hue 10, wall_hue 10, object_hue 10    hue 0, 0.1, ..., 0.9 (saturation and value 1)
    scale 8                                     0.75 .. 1.25
    shape 4                                     cube, cylinder, sphere, capsule
    orientation 15                              -30 .. 30 degrees (the camera turns around the room)

The look is ours, drawn in 2D with signed distances and flat shading (no ray tracing): the back
corner of the room moves and the two walls' shading trades places as the camera turns; the floor
darkens toward the back; the object stands at the centre, shaded from the left, its visible faces
following the orientation (a cube shows a side face as the camera turns). The factors and their
grid are the data set's.
"""

from __future__ import annotations

import math

import torch

from .grid import GridRenderer, category_weights, hsv_to_rgb, soft_mask

SHAPES = ("cube", "cylinder", "sphere", "capsule")
MAX_HUE = 0.9
MAX_ANGLE = math.pi / 6  # 30 degrees
OBJECT_BASE = 0.86  # image y of the object's base


class Shapes3DGenerator(GridRenderer):
    """Procedural 3D-Shapes-style scenes (see module docstring); the ground truth of the 3D Shapes grid."""

    name = "shapes3d"
    summary = (
        "procedural 3D Shapes grid (floor/wall/object hue, scale, shape, orientation), 64 px, no weights"
    )
    factors = {"floor_hue": 10, "wall_hue": 10, "object_hue": 10, "scale": 8, "shape": 4, "orientation": 15}

    def render_units(self, units: torch.Tensor) -> torch.Tensor:
        B, size = units.shape[0], self.image_size
        floor_hue, wall_hue, object_hue, scale, shape, orientation = units.unbind(1)  # (B,) each
        angle = (orientation * 2 - 1)[:, None] * MAX_ANGLE  # (B, 1) radians
        xx, yy = self.xx, self.yy  # (1, P)

        # the room: back corner at cx, floor line lowest at the image sides
        cx = 0.5 + 0.9 * torch.sin(angle)  # (B, 1)
        floor_line = 0.42 + 0.3 * (xx - cx).abs()  # (B, P)
        floor = soft_mask(floor_line - yy, size)  # 1 below the line
        left_wall = soft_mask(xx - cx, size)  # 1 left of the corner
        turn = torch.sin(angle) / math.sin(MAX_ANGLE)  # (B, 1) in [-1, 1]
        wall_v = left_wall * (0.78 + 0.12 * turn) + (1 - left_wall) * (0.78 - 0.12 * turn)  # (B, P)
        floor_v = 0.55 + 0.45 * ((yy - 0.42) / 0.58).clamp(0, 1)  # (1, P): darker toward the back
        wall_rgb = hsv_to_rgb((wall_hue * MAX_HUE)[:, None].expand_as(wall_v), 1.0, wall_v)  # (B, P, 3)
        floor_rgb = hsv_to_rgb(
            (floor_hue * MAX_HUE)[:, None].expand_as(wall_v), 1.0, floor_v.expand_as(wall_v)
        )
        room = floor[..., None] * floor_rgb + (1 - floor[..., None]) * wall_rgb

        # the object: each shape's coverage and shading, blended by the shape factor
        s = (0.75 + 0.5 * scale)[:, None]  # (B, 1)
        half = 0.12 * s  # half width
        px = xx - 0.5  # (1, P) relative to the object's axis
        masks, shades = [], []

        # cube: front face 2*half*cos(a) wide, side face 2*half*|sin(a)| on the side the camera turns to
        front, side = half * torch.cos(angle), half * torch.sin(angle).abs()
        height = 2 * half
        top = OBJECT_BASE - height
        sign = torch.sign(angle) + (angle == 0).float()
        left_edge = -front - side * (sign > 0).float()
        right_edge = front + side * (sign < 0).float()
        cube = torch.maximum(
            torch.maximum(left_edge - px, px - right_edge), torch.maximum(top - yy, yy - OBJECT_BASE)
        )
        in_side = soft_mask(sign * (px + sign * front), size)  # 1 on the side face
        masks.append(soft_mask(cube, size))
        shades.append(0.95 - 0.35 * in_side)

        # cylinder: a box with an elliptic top (lighter) and bottom
        ry = 0.3 * half
        body = torch.maximum(px.abs() - half, torch.maximum(top + ry - yy, yy - OBJECT_BASE + ry))
        top_cap = (torch.sqrt((px / half) ** 2 + ((yy - top - ry) / ry) ** 2) - 1) * ry
        bottom_cap = (torch.sqrt((px / half) ** 2 + ((yy - OBJECT_BASE + ry) / ry) ** 2) - 1) * ry
        cylinder = torch.minimum(body, torch.minimum(top_cap, bottom_cap))
        nx = (px / half).clamp(-1, 1)
        lambert = (0.8 * torch.sqrt(1 - nx**2) - 0.5 * nx).clamp(0, 1)
        masks.append(soft_mask(cylinder, size))
        shades.append(torch.where(top_cap < 0, torch.ones_like(lambert), 0.35 + 0.65 * lambert))

        # sphere: a disc standing on the floor, shaded from the upper left
        r = 1.1 * half
        cy = OBJECT_BASE - r
        dist = torch.sqrt(px**2 + (yy - cy) ** 2)
        masks.append(soft_mask(dist - r, size))
        nz = torch.sqrt((1 - (dist / r) ** 2).clamp(0, 1))
        shades.append(0.35 + 0.65 * (0.6 * nz - 0.4 * px / r - 0.3 * (yy - cy) / r).clamp(0, 1))

        # capsule: a vertical segment with round ends
        rc = 0.75 * half
        seg_lo, seg_hi = OBJECT_BASE - rc, OBJECT_BASE - 2.6 * half + rc
        dy = yy - torch.minimum(torch.maximum(yy, seg_hi), seg_lo)  # to the nearest point of the segment
        dist_c = torch.sqrt(px**2 + dy**2)
        masks.append(soft_mask(dist_c - rc, size))
        nz_c = torch.sqrt((1 - (dist_c / rc) ** 2).clamp(0, 1))
        shades.append(0.35 + 0.65 * (0.7 * nz_c - 0.4 * px / rc).clamp(0, 1))

        weights = category_weights(shape, len(SHAPES))  # (B, 4)
        mask = sum(w[:, None] * m for w, m in zip(weights.unbind(1), masks, strict=True))  # (B, P)
        shade = sum(w[:, None] * m * sh for w, m, sh in zip(weights.unbind(1), masks, shades, strict=True))
        shade = shade / mask.clamp_min(1e-4)
        obj_rgb = hsv_to_rgb(object_hue[:, None].expand_as(shade) * MAX_HUE, 1.0, shade.clamp(0, 1))
        img = room * (1 - mask[..., None]) + obj_rgb * mask[..., None]  # (B, P, 3)
        return (img * 2 - 1).permute(0, 2, 1).reshape(B, 3, size, size)
