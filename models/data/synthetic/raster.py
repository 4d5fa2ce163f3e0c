"""Software rasteriser for sphere-swept primitives (tapered capsules) with a z-buffer and shading.

Each primitive is a tapered capsule: the set of spheres centred on the segment A->B (camera
coordinates, mm, z forward) with radius r(t) = ra + t (rb - ra). It is drawn in screen space:
for a pixel centre p, t is the parameter of the closest point of the projected segment
a->b, d the distance to it, rho(t) = f r(t) / z(t) the projected radius; the pixel is covered by
clip(rho - d + 0.5, 0, 1) (soft edges = anti-aliasing), its depth is
z(t) - r(t) sqrt(1 - (d/rho)^2) and its normal (dx/rho, dy/rho, -sqrt(1 - (d/rho)^2)).
The nearest primitive wins (z-buffer); shading (wrapped Lambert + Blinn-Phong) is applied once
after all primitives are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

VIEW = np.array([0.0, 0.0, -1.0], np.float32)
#: colour of light scattered under the skin (added on the shadowed side)
SCATTER = np.array([1.0, 0.35, 0.2], np.float32)


@dataclass
class Primitive:
    """One tapered capsule in camera coordinates (mm).

    a, b: (3,) end centres; ra, rb: radii; dorsal, palm: (3,) RGB albedo 0..1 of the back and
    the palm side; palmar: (3,) unit palmar direction (camera frame) blending dorsal -> palm;
    nail: draw a nail on the dorsal side near b; label: value written to the label buffer.
    """

    a: np.ndarray
    b: np.ndarray
    ra: float
    rb: float
    dorsal: np.ndarray
    palm: np.ndarray
    palmar: np.ndarray
    nail: bool
    label: int
    shine: float = 1.0


class Canvas:
    """Buffers of one rendered view: depth (H, W) mm, normals (H, W, 3), albedo (H, W, 3),
    coverage alpha (H, W), specular weight (H, W) and an int8 label per pixel (0 = nothing)."""

    def __init__(self, height: int, width: int, intrinsics: np.ndarray) -> None:
        self.height, self.width = height, width
        K = np.asarray(intrinsics, np.float64)
        self.fx, self.fy, self.cx, self.cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        self.depth = np.full((height, width), np.inf, np.float32)
        self.normal = np.zeros((height, width, 3), np.float32)
        self.albedo = np.zeros((height, width, 3), np.float32)
        self.alpha = np.zeros((height, width), np.float32)
        self.spec = np.zeros((height, width), np.float32)
        self.label = np.zeros((height, width), np.int8)

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) camera mm -> (N, 2) pixels: u = fx x / z + cx, v = fy y / z + cy."""
        points = np.asarray(points, np.float64)
        z = points[:, 2]
        return np.stack(
            [self.fx * points[:, 0] / z + self.cx, self.fy * points[:, 1] / z + self.cy], axis=1
        )

    def draw(self, prim: Primitive) -> None:
        """Rasterise one primitive into the buffers (z-test against what is there)."""
        if prim.a[2] < 20.0 or prim.b[2] < 20.0:
            return
        (ua, va), (ub, vb) = self.project(np.stack([prim.a, prim.b]))
        f = 0.5 * (self.fx + self.fy)
        rho_a, rho_b = f * prim.ra / prim.a[2], f * prim.rb / prim.b[2]
        x0 = int(np.floor(max(min(ua - rho_a, ub - rho_b) - 1, 0)))
        x1 = int(np.ceil(min(max(ua + rho_a, ub + rho_b) + 1, self.width)))
        y0 = int(np.floor(max(min(va - rho_a, vb - rho_b) - 1, 0)))
        y1 = int(np.ceil(min(max(va + rho_a, vb + rho_b) + 1, self.height)))
        if x1 <= x0 or y1 <= y0:
            return
        px = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, :] - np.float32(ua)
        py = (np.arange(y0, y1, dtype=np.float32) + 0.5)[:, None] - np.float32(va)
        ex, ey = np.float32(ub - ua), np.float32(vb - va)
        length2 = float(ex * ex + ey * ey)
        if length2 > 1e-6:
            t = np.clip((px * ex + py * ey) * np.float32(1.0 / length2), 0.0, 1.0)
        else:
            t = np.zeros((y1 - y0, x1 - x0), np.float32)
        dx = px - t * ex
        dy = py - t * ey
        dist = np.sqrt(dx * dx + dy * dy)
        rho = np.float32(rho_a) + t * np.float32(rho_b - rho_a)
        cover = np.clip(rho - dist + 0.5, 0.0, 1.0)
        q = np.minimum(dist / np.maximum(rho, 1e-3), 1.0)
        s = np.sqrt(1.0 - q * q)
        z = np.float32(prim.a[2]) + t * np.float32(prim.b[2] - prim.a[2])
        r = np.float32(prim.ra) + t * np.float32(prim.rb - prim.ra)
        depth = z - r * s
        window = (slice(y0, y1), slice(x0, x1))
        win = (cover > 0) & (depth < self.depth[window])
        if not win.any():
            return
        inv = 1.0 / np.maximum(rho, 1e-3)
        nx, ny = dx * inv, dy * inv
        nz = -s
        pal = prim.palmar.astype(np.float32)
        side = np.clip(0.45 + 1.6 * (nx * pal[0] + ny * pal[1] + nz * pal[2]), 0.0, 1.0)
        dorsal, palm = prim.dorsal.astype(np.float32), prim.palm.astype(np.float32)
        albedo = dorsal + side[..., None] * (palm - dorsal)
        spec = np.full(win.shape, prim.shine, np.float32)
        if prim.nail:
            nail = (side < 0.05) & (t > 0.55) & (q < 0.75)
            if nail.any():
                nail_col = 0.6 * dorsal + 0.4 * np.array([0.92, 0.74, 0.72], np.float32)
                albedo[nail] = nail_col
                spec[nail] = 2.0
        self.depth[window][win] = depth[win]
        self.normal[window][win] = np.stack([nx, ny, nz], axis=-1)[win]
        self.albedo[window][win] = albedo[win]
        self.spec[window][win] = spec[win]
        self.label[window][win] = prim.label
        self.alpha[window] = np.maximum(self.alpha[window], cover)

    def draw_ellipsoid(
        self,
        centre: np.ndarray,
        axes: np.ndarray,
        dorsal: np.ndarray,
        palm: np.ndarray,
        palmar: np.ndarray,
        label: int,
    ) -> None:
        """Ray-cast an ellipsoid {c + A s : |s| <= 1}, axes = A (3, 3) with semi-axis columns.

        In sphere space M = A^-1 a pixel ray d = ((u - cx) / fx, (v - cy) / fy, 1) becomes
        o' = -M c, d' = M d; the hit is t = (-b - sqrt(b^2 - 4 a c)) / 2a with a = d'.d',
        b = 2 o'.d', c = o'.o' - 1, its depth t (d_z = 1) and normal M^T (o' + t d').
        """
        centre = np.asarray(centre, np.float64)
        radius = float(np.linalg.norm(axes, axis=0).max())
        if centre[2] - radius < 20.0:
            return
        ((uc, vc),) = self.project(centre[None])
        rho = 0.5 * (self.fx + self.fy) * radius / (centre[2] - radius)
        x0, x1 = int(max(np.floor(uc - rho - 1), 0)), int(min(np.ceil(uc + rho + 1), self.width))
        y0, y1 = int(max(np.floor(vc - rho - 1), 0)), int(min(np.ceil(vc + rho + 1), self.height))
        if x1 <= x0 or y1 <= y0:
            return
        M = np.linalg.inv(axes).astype(np.float32)
        op = (-M @ centre).astype(np.float32)
        rx = ((np.arange(x0, x1, dtype=np.float32) + 0.5 - self.cx) / self.fx)[None, :]
        ry = ((np.arange(y0, y1, dtype=np.float32) + 0.5 - self.cy) / self.fy)[:, None]
        dpx = M[:, 0, None, None] * rx + M[:, 1, None, None] * ry + M[:, 2, None, None]
        a = (dpx * dpx).sum(axis=0)
        b = 2.0 * (op[:, None, None] * dpx).sum(axis=0)
        c = float(op @ op) - 1.0
        h2 = c + 1.0 - b * b / (4.0 * a)  # squared distance of the ray to the centre (sphere)
        rho_px = (
            0.5 * (self.fx + self.fy) * float(np.median(np.linalg.norm(axes, axis=0))) / centre[2]
        )
        cover = np.clip((1.0 - np.sqrt(np.maximum(h2, 0.0))) * rho_px + 0.5, 0.0, 1.0)
        disc = np.maximum(b * b - 4.0 * a * c, 0.0)
        t = (-b - np.sqrt(disc)) / (2.0 * a)
        window = (slice(y0, y1), slice(x0, x1))
        win = (cover > 0) & (t < self.depth[window])
        if not win.any():
            return
        hit = op[:, None, None] + t * dpx
        n = np.tensordot(M.T, hit, axes=1)
        n /= np.maximum(np.linalg.norm(n, axis=0), 1e-6)
        nx, ny, nz = n
        pal = palmar.astype(np.float32)
        side = np.clip(0.45 + 1.6 * (nx * pal[0] + ny * pal[1] + nz * pal[2]), 0.0, 1.0)
        dorsal, palm = dorsal.astype(np.float32), palm.astype(np.float32)
        albedo = dorsal + side[..., None] * (palm - dorsal)
        self.depth[window][win] = t[win]
        self.normal[window][win] = np.stack([nx, ny, nz], axis=-1)[win]
        self.albedo[window][win] = albedo[win]
        self.spec[window][win] = 1.0
        self.label[window][win] = label
        self.alpha[window] = np.maximum(self.alpha[window], cover)

    def shade(self, light: Light, window: tuple[slice, slice] | None = None) -> np.ndarray:
        """Shaded colour (h, w, 3) float 0..1 of `window` (default all), see `shade`."""
        window = window or (slice(None), slice(None))
        return shade(self.normal[window], self.albedo[window], self.spec[window], light)


def shade(normal: np.ndarray, albedo: np.ndarray, spec: np.ndarray, light: Light) -> np.ndarray:
    """Skin shading of (h, w) pixels: normals (h, w, 3), albedo (h, w, 3), specular weight (h, w).

    colour = albedo (ambient + light * ((n.l + w) / (1 + w))^+) + ks spec light (n.h)^p
             + 0.12 albedo (1 - diffuse) SCATTER,
    times a rim factor 0.75 + 0.25 (-n_z), with l the unit direction towards the light,
    h = normalize(l + v), v = (0, 0, -1). Returns float (h, w, 3), about 0..1.
    """
    n = normal
    ndl = n @ light.direction.astype(np.float32)
    diffuse = np.clip((ndl + light.wrap) / (1.0 + light.wrap), 0.0, 1.0)
    half = light.direction + VIEW
    half = (half / np.linalg.norm(half)).astype(np.float32)
    ndh = np.clip(n @ half, 0.0, 1.0)
    specular = light.specular * spec * ndh**light.shininess
    fill = np.clip(n @ light.fill_direction.astype(np.float32), 0.0, 1.0)
    colour = albedo * (
        light.ambient + diffuse[..., None] * light.colour + fill[..., None] * light.fill_colour
    )
    # subsurface scattering look: light bleeds reddish into the shadowed side of skin
    colour += albedo * ((1.0 - diffuse) * 0.12)[..., None] * SCATTER
    colour += specular[..., None] * light.colour
    # a faint rim darkening where the surface turns away (soft occlusion at silhouettes)
    colour *= (0.75 + 0.25 * np.clip(-n[..., 2], 0, 1))[..., None]
    return colour


@dataclass
class Light:
    """A directional light. direction: unit (3,) towards the light (camera frame); colour (3,)
    already times the intensity; ambient (3,); wrap: diffuse wrap (soft skin); specular
    strength and Blinn-Phong shininess; a second, weaker fill light (direction, colour)."""

    direction: np.ndarray
    colour: np.ndarray
    ambient: np.ndarray
    wrap: float = 0.3
    specular: float = 0.15
    shininess: float = 20.0
    fill_direction: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, -1.0]))
    fill_colour: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Light:
        d = np.array([rng.normal(0, 0.7), rng.normal(-0.3, 0.6), -abs(rng.normal(0.9, 0.5))])
        d /= np.linalg.norm(d)
        warmth = rng.uniform(-0.1, 0.1)
        tint = np.array([1.0 + warmth, 1.0, 1.0 - warmth]) * rng.uniform(0.95, 1.05, 3)
        intensity = rng.uniform(0.55, 1.0)
        fill = rng.normal(0.0, 1.0, 3)  # a weaker second light from anywhere (rim / bounce)
        ambient = rng.uniform(0.25, 0.5) * np.array([1.0, 1.0, 1.0]) * rng.uniform(0.9, 1.1, 3)
        return cls(
            direction=d.astype(np.float32),
            colour=(tint * intensity).astype(np.float32),
            ambient=ambient.astype(np.float32),
            wrap=float(rng.uniform(0.1, 0.5)),
            specular=float(rng.uniform(0.03, 0.3)),
            shininess=float(rng.uniform(8, 40)),
            fill_direction=(fill / np.linalg.norm(fill)).astype(np.float32),
            fill_colour=(rng.uniform(0.0, 0.3) * rng.uniform(0.7, 1.0, 3)).astype(np.float32),
        )
