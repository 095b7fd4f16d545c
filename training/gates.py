#!/usr/bin/python3
"""ReLU-zero gates for FaceRecognitionNet ("More is Less", CVPR 2017), learned by distillation.

Offline only: the output (training/output/) is committed and read by tools/models/gated/build.ts;
nothing here runs at run time. Data comes from `npx tsx tools/training/export-crops.ts` (lfw/calib and
faces/ only; lfw/dev is never used). See docs/relu-zero.md.

Every one of the 29 convs is gated: a hard gate (logit > 0 = compute) from a cheap predictor says where
its output is computed, and closed means the conv's output is real 0 there:
  - the stem conv feeds a ReLU: its ReLU output is 0 (the classic ReLU-zero claim);
  - a block's conv2 feeds the residual add: the residual branch is dropped, so the block output is
    ReLU(0 + shortcut) = shortcut (the shortcut is a ReLU output, so it is >= 0). Zeroing the post-add
    output instead would erase the shortcut too, i.e. everything earlier layers computed at that pixel;
  - a block's conv1 is closed only where no open conv2 pixel reads it (see Gate), so it costs nothing.

  /usr/bin/python3 training/gates.py                      # main run, writes training/output/
  /usr/bin/python3 training/gates.py --smoke --out DIR    # a few steps on the test fixture (CI)
"""
import argparse
import json
import os
import platform
import re
import struct
import sys
import tempfile
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS_MANIFEST = os.path.join(
    ROOT, 'node_modules/@vladmandic/face-api/model/face_recognition_model-weights_manifest.json')
FIXTURE_DIR = os.path.join(ROOT, 'test/unit/models/gated/fixtures')
SIZE = 150
MEAN_RGB = [122.782, 117.001, 104.298]
STD = 255.0
# Same stage list as tools/models/facerec/build.ts (FACEREC_BLOCKS).
BLOCKS = [('conv32_1', False), ('conv32_2', False), ('conv32_3', False), ('conv64_down', True),
          ('conv64_1', False), ('conv64_2', False), ('conv64_3', False), ('conv128_down', True),
          ('conv128_1', False), ('conv128_2', False), ('conv256_down', True), ('conv256_1', False),
          ('conv256_2', False), ('conv256_down_out', True)]
CHANNEL_BLOCK = 16  # the kernels' output-channel block (docs/kernels.md)


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------------------
# Weights and architecture


def load_tfjs_weights(manifest_path):
    """tfjs manifest + shards -> {name: float32 array}; uint8 tensors dequantized as q * scale + min."""
    out = {}
    for group in json.load(open(manifest_path)):
        data = b''.join(open(os.path.join(os.path.dirname(manifest_path), p), 'rb').read()
                        for p in group['paths'])
        off = 0
        for w in group['weights']:
            n = int(np.prod(w['shape']))
            q = w.get('quantization')
            if q:
                if q['dtype'] != 'uint8':
                    raise ValueError(f"{w['name']}: unsupported quantization {q['dtype']}")
                v = (np.frombuffer(data, np.uint8, n, off) * q['scale'] + q['min']).astype(np.float32)
                off += n
            else:
                v = np.frombuffer(data, '<f4', n, off).copy()
                off += 4 * n
            out[w['name']] = v.reshape(w['shape'])
    return out


def fold_conv(weights, prefix):
    """Conv bias and the following scale layer folded into one conv, as foldConv in build.ts."""
    filters = weights[f'{prefix}/conv/filters']  # [kh, kw, cin, cout]
    scale = weights[f'{prefix}/scale/weights']
    w = filters.transpose(3, 2, 0, 1) * scale[:, None, None, None]
    b = weights[f'{prefix}/conv/bias'] * scale + weights[f'{prefix}/scale/biases']
    return w.astype(np.float32), b.astype(np.float32)


class ConvSpec:
    def __init__(self, name, cin, cout, k, stride, pad, in_size, kind):
        self.name, self.cin, self.cout, self.k, self.stride, self.pad = name, cin, cout, k, stride, pad
        self.in_size = in_size
        self.out_size = (in_size + 2 * pad - k) // stride + 1
        self.kind = kind  # 'relu': feeds a ReLU; 'residual': feeds the block's residual add
        self.macs = self.out_size ** 2 * cout * cin * k * k


def conv_specs():
    specs = [ConvSpec('conv32_down', 3, 32, 7, 2, 0, SIZE, 'relu')]
    size, ch = 35, 32  # after the 3x3/2 max pool
    for name, down in BLOCKS:
        cout = int(name[4:7].rstrip('_'))
        c1 = ConvSpec(f'{name}/conv1', ch, cout, 3, 2 if down else 1, 0 if down else 1, size, 'relu')
        specs += [c1, ConvSpec(f'{name}/conv2', cout, cout, 3, 1, 1, c1.out_size, 'residual')]
        size, ch = (size // 2 if down else size), cout
    return specs


SPECS = conv_specs()
TOTAL_MACS = sum(s.macs for s in SPECS)


class FaceRecNet(nn.Module):
    """FaceRecognitionNet on folded convs; `gates` (optional) zero conv outputs where closed."""

    def __init__(self, weights):
        super().__init__()
        folded = [fold_conv(weights, s.name) for s in SPECS]
        self.w = nn.ParameterList([nn.Parameter(torch.from_numpy(w)) for w, _ in folded])
        self.b = nn.ParameterList([nn.Parameter(torch.from_numpy(b)) for _, b in folded])
        self.fc = nn.Parameter(torch.from_numpy(weights['fc'].copy()))  # [256, 128]

    def conv(self, i, x):
        s = SPECS[i]
        return F.conv2d(x, self.w[i], self.b[i], s.stride, s.pad)

    def forward(self, x, gates=None, trace=None):
        """Returns (embedding, per-conv STE masks). `trace` collects, per gate site, the site input and
        the damage closing each output pixel would do (mean square change of the conv's consumer)."""
        masks = []
        y = F.relu(self.conv(0, x))
        if trace is not None:
            trace.append((x, (y ** 2).mean(1)))
        if gates is not None:
            masks += gates[0](x)
            y = y * masks[-1]
        x = F.max_pool2d(y, 3, 2)
        for k, (_, down) in enumerate(BLOCKS):
            i = 1 + 2 * k
            if gates is not None:
                masks += gates[k + 1](x)
            h = F.relu(self.conv(i, x))
            if gates is not None:
                h = h * masks[-2]
            c = self.conv(i + 1, h)
            if gates is not None:
                c = c * masks[-1]
            s = x
            if down:
                s = F.avg_pool2d(x, 2, 2)
                if c.shape[1] != s.shape[1]:
                    s = F.pad(s, (0, 0, 0, 0, 0, c.shape[1] - s.shape[1]))
            if trace is not None:
                s_c = s[:, :, :c.shape[2], :c.shape[3]]
                trace.append((x, ((F.relu(c + s_c) - s_c) ** 2).mean(1)))
            if c.shape[-1] != s.shape[-1]:
                c = F.pad(c, (0, 1, 0, 1))  # face-api's zero row and column (see build.ts)
            x = F.relu(c + s)
        return x.mean((2, 3)) @ self.fc, masks


# ---------------------------------------------------------------------------------------------------
# Gates
#
# One gate site for the stem conv and one per residual block, each a predictor on the site's input.
# In a block, the conv2 gate drops the residual branch at a pixel (block output = shortcut there) and
# conv1 is gated by that mask dilated by conv2's 3x3 window: conv1 outputs are computed exactly where an
# open conv2 pixel reads them, so gating conv1 changes nothing and saves its MACs wherever a whole
# 3x3 neighbourhood is closed. Channel groups have no such coupling: conv1 and conv2 get their own.


def parse_granularity(g):
    """'pixel' | 'tileN' (N x N output pixels) | 'group16' (16-channel block, per image)."""
    if g == 'pixel':
        return 'spatial', 1
    if g.startswith('tile'):
        return 'spatial', int(g[4:])
    if g == f'group{CHANNEL_BLOCK}':
        return 'group', CHANNEL_BLOCK
    raise ValueError(f'unknown granularity {g}')


class Gate(nn.Module):
    """Spatial: a conv on the site input to one logit per output pixel, 1x1 for stride-1 blocks with
    predictor=1x1 (3x3 with predictor=3x3), else the first conv's own kernel, stride and padding so
    strided 'valid' convs stay aligned; averaged over N x N tiles. Group: one logit per 16-channel
    block of each gated conv, per image, from the site input's channel means."""

    def __init__(self, site, granularity, predictor):
        super().__init__()
        self.kind, self.n = parse_granularity(granularity)
        self.site = site  # the first conv: its input is the site input, its output grid the gate's
        self.convs = [site] if site.name == 'conv32_down' else [site, SPECS[SPECS.index(site) + 1]]
        if self.kind == 'group':
            self.lin = nn.Linear(site.cin, sum(c.cout // self.n for c in self.convs))
            weight, bias = self.lin.weight, self.lin.bias
        else:
            if site.stride == 1:
                self.k, self.pad = (1, 0) if predictor == '1x1' else (3, 1)
            else:
                self.k, self.pad = site.k, site.pad
            self.conv = nn.Conv2d(site.cin, 1, self.k, site.stride, self.pad)
            weight, bias = self.conv.weight, self.conv.bias
        # Open at the start (sigmoid(3) = 0.95): training begins from the dense network.
        nn.init.normal_(weight, 0.0, 0.1 / weight[0].numel() ** 0.5)
        nn.init.constant_(bias, 3.0)

    def logits(self, x):
        if self.kind == 'group':
            return self.lin(x.mean((2, 3)))
        z = self.conv(x)
        # ceil_mode: edge tiles are partial and average only their in-bounds pixels (as ONNX
        # AveragePool with ceil_mode=1, count_include_pad=0).
        return F.avg_pool2d(z, self.n, self.n, ceil_mode=True) if self.n > 1 else z

    def forward(self, x):
        """STE masks, one per gated conv: [N, 1, H, W] (spatial) or [N, C, 1, 1] (group)."""
        z = self.logits(x)
        p = torch.sigmoid(z)
        g = (z > 0).float() + p - p.detach()  # hard forward, sigmoid gradient (straight-through)
        if self.kind == 'group':
            sizes = [c.cout // self.n for c in self.convs]
            return [m.repeat_interleave(self.n, 1)[:, :, None, None] for m in torch.split(g, sizes, 1)]
        size = self.site.out_size
        if self.n > 1:
            g = g.repeat_interleave(self.n, 2).repeat_interleave(self.n, 3)[:, :, :size, :size]
        return [g] if len(self.convs) == 1 else [F.max_pool2d(g, 3, 1, 1), g]

    def macs(self):
        s = self.site
        if self.kind == 'group':
            return s.in_size ** 2 * s.cin + self.lin.weight.numel()
        return s.out_size ** 2 * s.cin * self.k * self.k

    @torch.no_grad()
    def fit(self, x, damage, closed=0.02):
        """Starts a spatial predictor as a ridge regression of log(damage) on its input patch, scaled
        to logits of std 2 with `closed` of the pixels below 0: the first pixels to close are the
        ones closing harms least, instead of random ones."""
        cols = F.unfold(x, self.k, padding=self.pad, stride=self.site.stride)  # [N, cin*k*k, L]
        a = cols.permute(0, 2, 1).reshape(-1, cols.shape[1]).double()
        y = torch.log(damage.reshape(-1).double() + 1e-6)
        am, ym = a.mean(0), y.mean()
        a0 = a - am
        gram = a0.T @ a0 / len(a)
        w = torch.linalg.solve(gram + 1e-3 * gram.trace() / len(gram) * torch.eye(len(gram), dtype=gram.dtype),
                               a0.T @ (y - ym) / len(a))
        pred = a0 @ w + ym
        scale = 2 / pred.std()
        self.conv.weight.copy_((scale * w).view_as(self.conv.weight))
        self.conv.bias.fill_(float(scale * (ym - am @ w - torch.quantile(pred.float(), closed))))


@torch.no_grad()
def load_init(init_dir, student, gates):
    """Starts from an earlier run's output (gates.json + gates.bin): its fine-tuned convs, fc and
    predictors, which must have the same design (granularity, predictor kernels)."""
    doc = json.load(open(os.path.join(init_dir, 'gates.json')))
    values = np.fromfile(os.path.join(init_dir, doc['weightsFile']), '<f4')

    def blob(b):
        return torch.from_numpy(values[b['offset']:b['offset'] + int(np.prod(b['dims']))].reshape(b['dims']).copy())

    for i, c in enumerate(doc['convs']):
        if c['name'] != SPECS[i].name:
            raise ValueError(f"{init_dir}: conv {i} is {c['name']}, expected {SPECS[i].name}")
        student.w[i].copy_(blob(c['weights']))
        student.b[i].copy_(blob(c['bias']))
    student.fc.copy_(blob(doc['fc']))
    for g, site in zip(gates, doc['sites']):
        if g.kind != 'spatial' or list(g.conv.weight.shape) != site['predictor']['weights']['dims']:
            raise ValueError(f"{init_dir}: the predictor of {site['convs'][0]} has another design")
        g.conv.weight.copy_(blob(site['predictor']['weights']))
        g.conv.bias.copy_(blob(site['predictor']['bias']))


def make_gates(granularity, predictor):
    return nn.ModuleList([Gate(s, granularity, predictor) for s in SPECS if s.name.endswith(('down', 'conv1'))])


def executed_fraction(masks):
    """MAC-weighted fraction of conv outputs computed (differentiable through the STE masks)."""
    return sum(SPECS[i].macs * m.mean() for i, m in enumerate(masks)) / TOTAL_MACS


def site_open_fractions(masks):
    """Per gate site and per image, the MAC-weighted fraction of its convs computed: [sites, N]. The
    stem is one conv, each block two (masks come in SPECS order)."""
    spans = [[0]] + [[i, i + 1] for i in range(1, len(SPECS), 2)]
    out = []
    for span in spans:
        macs = sum(SPECS[i].macs for i in span)
        out.append(sum(SPECS[i].macs * masks[i].flatten(1).mean(1) for i in span) / macs)
    return torch.stack(out)


def relation_loss(s_emb, t_emb):
    """Pairwise relations: the squared change of every in-batch pair's cosine, which is what a
    verification threshold reads."""
    s, t = F.normalize(s_emb, dim=1), F.normalize(t_emb, dim=1)
    iu = torch.triu_indices(len(s), len(s), 1)
    return ((s @ s.T - t @ t.T)[iu[0], iu[1]] ** 2).mean()


# ---------------------------------------------------------------------------------------------------
# Data


def normalise(rgb_u8):
    """[N, H, W, 3] uint8 -> [N, 3, H, W] float as the manifest says: (rgb - mean) / 255."""
    x = torch.from_numpy(rgb_u8).permute(0, 3, 1, 2).float()
    return (x - torch.tensor(MEAN_RGB).view(1, 3, 1, 1)) / STD


def augment(rgb_u8, gen):
    """Flip, shift +-4 px, scale 0.95-1.05, rotation +-4 deg, brightness +-20, contrast +-15%, colour
    gains +-8%, low light (30%: gamma 1.2-2.2), blur (30%: 3x3 binomial) on RGB 0..255 (the out-of-frame
    fill is black, as the runtime's warp): the alignment jitter, lighting and optics a camera adds."""
    n = rgb_u8.shape[0]
    x = torch.from_numpy(rgb_u8).permute(0, 3, 1, 2).float()

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    scale, angle = u(0.95, 1.05), u(-4, 4) * np.pi / 180
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    tx, ty = u(-4, 4) * 2 / SIZE, u(-4, 4) * 2 / SIZE
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    contrast, bright = u(0.85, 1.15).view(n, 1, 1, 1), u(-20, 20).view(n, 1, 1, 1)
    m = x.mean((1, 2, 3), keepdim=True)
    x = ((x - m) * contrast + m + bright).clamp(0, 255)
    x = (x * (1 + 0.08 * (2 * torch.rand(n, 3, 1, 1, generator=gen) - 1))).clamp(0, 255)
    dark = (torch.rand(n, generator=gen) < 0.3).float().view(n, 1, 1, 1)
    gamma = 1 + dark * u(0.2, 1.2).view(n, 1, 1, 1)
    x = 255 * (x / 255) ** gamma
    k = torch.tensor([1.0, 2.0, 1.0])
    k = (k[:, None] * k[None, :] / 16).expand(3, 1, 3, 3)
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode='replicate'), k, groups=3)
    blur = (torch.rand(n, generator=gen) < 0.3).float().view(n, 1, 1, 1)
    x = blur * blurred + (1 - blur) * x
    return (x - torch.tensor(MEAN_RGB).view(1, 3, 1, 1)) / STD


def load_export(export_dir):
    index = json.load(open(os.path.join(export_dir, 'index.json')))
    n, size = index['count'], index['size']
    crops = np.fromfile(os.path.join(export_dir, 'crops.u8'), np.uint8).reshape(n, size, size, 3)
    teacher = np.fromfile(os.path.join(export_dir, 'teacher.f32'), '<f4').reshape(n, 128)
    if index.get('lfwDevUsed') is not False or any('lfw/dev' in e['file'] for e in index['crops']):
        raise ValueError('the export must not contain lfw/dev crops')
    return index, crops, teacher


def split_held_out(index, rng, fraction):
    """Held-out = lfw/calib crops of a person-disjoint subset: every person with 2+ images (the only
    genuine pairs calib has) plus random single-image people up to `fraction` of calib. Crops from
    held-out images (background faces too) never enter training. Second check: a person-disjoint
    `fraction` of the CelebA identities with 2+ crops, none of whose crops is trained on.
    Returns (train, held-out calib, held-out CelebA) crop indices."""
    entries = index['crops']
    by_person, celeba = {}, {}
    for i, e in enumerate(entries):
        if e['person'] is None:
            continue
        (celeba if e['person'].startswith('celeba:') else by_person).setdefault(e['person'], []).append(i)

    multi = sorted(p for p, ids in by_person.items() if len(ids) > 1)
    singles = sorted(p for p, ids in by_person.items() if len(ids) == 1)
    want = int(fraction * sum(len(v) for v in by_person.values()))
    chosen = multi + list(rng.permutation(singles)[:max(0, want - sum(len(by_person[p]) for p in multi))])
    held = sorted(i for p in chosen for i in by_person[p])
    # Drawn after the calib split, so that split is the one earlier runs (without CelebA) drew.
    celeba_multi = sorted(p for p, ids in celeba.items() if len(ids) > 1)
    celeba_held = sorted(rng.permutation(celeba_multi)[:int(fraction * len(celeba_multi))])
    celeba_ids = sorted(i for p in celeba_held for i in celeba[p])
    held_files = {entries[i]['file'] for i in held + celeba_ids}
    train = [i for i, e in enumerate(entries) if e['file'] not in held_files]
    return np.array(train), np.array(held), np.array(celeba_ids, dtype=np.int64)


# PNG (8-bit RGB, 'Sub' filter) so the fixture crops stay small and lossless without PIL.
def write_png(path, rgb):
    h, w, _ = rgb.shape
    sub = rgb.astype(np.int16)
    sub[:, 1:] -= rgb[:, :-1]
    rows = np.concatenate([np.ones((h, 1), np.uint8), (sub % 256).astype(np.uint8).reshape(h, w * 3)], 1)

    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))

    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(rows.tobytes(), 9)) + chunk(b'IEND', b''))


def read_png(path):
    """Reads what write_png writes (and nothing else)."""
    data = open(path, 'rb').read()
    pos, idat, w, h = 8, b'', 0, 0
    while pos < len(data):
        n, = struct.unpack('>I', data[pos:pos + 4])
        t, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if t == b'IHDR':
            w, h = struct.unpack('>II', body[:8])
            if body[8:] != bytes([8, 2, 0, 0, 0]):
                raise ValueError(f'{path}: not an 8-bit RGB PNG')
        elif t == b'IDAT':
            idat += body
        pos += 12 + n
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * 3)
    if not (rows[:, 0] == 1).all():
        raise ValueError(f'{path}: expected the Sub filter on every row')
    return (np.cumsum(rows[:, 1:].reshape(h, w, 3).astype(np.int64), 1) % 256).astype(np.uint8)


def load_fixture(fixture_dir):
    expected = json.load(open(os.path.join(fixture_dir, 'expected.json')))
    crops = np.stack([read_png(os.path.join(fixture_dir, c['png'])) for c in expected['crops']])
    teacher = np.array([c['teacher'] for c in expected['crops']], np.float32)
    return expected, crops, teacher


# ---------------------------------------------------------------------------------------------------
# Measurement


def cosine(a, b):
    return F.cosine_similarity(a, b, dim=1)


@torch.no_grad()
def embed(model, x_u8, gates=None, batch=32):
    """Raw embeddings, mirror-averaged normalised embeddings and per-conv active fractions (sums)."""
    raw, flipped_sum, active = [], [], np.zeros(len(SPECS))
    for i in range(0, len(x_u8), batch):
        x = normalise(x_u8[i:i + batch])
        e, masks = model(x, gates)
        ef, _ = model(torch.flip(x, [3]), gates)
        raw.append(e)
        flipped_sum.append(F.normalize(e + ef, dim=1))
        if gates is not None:
            active += np.array([m.detach().mean().item() * len(x) for m in masks])
    return torch.cat(raw), torch.cat(flipped_sum), active / len(x_u8)


def tpr_at_far(genuine, impostor, far):
    thr = np.sort(impostor)[::-1][max(0, int(np.floor(far * len(impostor))) - 1)]
    return float((genuine > thr).mean()), float(thr)


def verification(persons, emb):
    """Every same-person / different-person pair among the labelled held-out crops."""
    if len(persons) < 2:
        return {'genuinePairs': 0, 'impostorPairs': 0}, np.zeros(0), np.zeros(0, bool)
    s = (emb @ emb.T).numpy()
    iu = np.triu_indices(len(persons), 1)
    same = np.array([[a == b for b in persons] for a in persons])[iu]
    genuine, impostor = s[iu][same], s[iu][~same]
    out = {'genuinePairs': int(len(genuine)), 'impostorPairs': int(len(impostor))}
    if len(genuine) == 0 or len(impostor) == 0:
        return out, s[iu], same
    for far in (1e-2, 1e-3):
        out[f'tprAtFar{far:g}'] = round(tpr_at_far(genuine, impostor, far)[0], 4)
    # AUC = P(genuine score > impostor score), from ranks.
    ranks = np.argsort(np.argsort(np.concatenate([genuine, impostor])))
    g = len(genuine)
    out['auc'] = round(float((ranks[:g].sum() - g * (g - 1) / 2) / (g * len(impostor))), 5)
    return out, s[iu], same


def evaluate(student, gates, teacher, crops, persons, centre):
    t_raw, t_flip, _ = embed(teacher, crops)
    s_raw, s_flip, active = embed(student, crops, gates)
    cos = cosine(s_raw, t_raw).numpy()
    centred = cosine(s_raw - centre, t_raw - centre).numpy()
    labelled = [i for i, p in enumerate(persons) if p is not None]
    p = [persons[i] for i in labelled]
    ver_t, scores_t, same = verification(p, t_flip[labelled])
    ver_s, scores_s, _ = verification(p, s_flip[labelled])
    thr = tpr_at_far(scores_t[same], scores_t[~same], 1e-2)[1] if 0 < same.sum() < len(same) else 0.0
    skipped = [1 - a for a in active]
    gate_macs = sum(g.macs() for g in gates)
    gross = sum(SPECS[i].macs * skipped[i] for i in range(len(SPECS))) / TOTAL_MACS
    return {
        'cosine': {'mean': round(float(cos.mean()), 5), 'p5': round(float(np.percentile(cos, 5)), 5),
                   'min': round(float(cos.min()), 5)},
        'centredCosine': {'mean': round(float(centred.mean()), 5), 'p5': round(float(np.percentile(centred, 5)), 5)},
        'skippedMacs': round(gross, 4),
        'predictorMacs': round(gate_macs / TOTAL_MACS, 4),
        'netSkippedMacs': round(gross - gate_macs / TOTAL_MACS, 4),
        'layers': [{'name': s.name, 'macs': s.macs, 'skip': round(skipped[i], 4)} for i, s in enumerate(SPECS)],
        'verification': {'teacher': ver_t, 'gated': ver_s,
                         # Pair decisions that change at the teacher's FAR-1e-2 threshold.
                         'decisionFlipsAtTeacherFar0.01': int(((scores_s > thr) != (scores_t > thr)).sum())},
        'crops': len(crops),
    }


# ---------------------------------------------------------------------------------------------------
# Output


def write_output(out_dir, student, gates, args, spec_meta):
    """gates.json (layout) + gates.bin (float32 LE): every conv's (fine-tuned) weights and bias, fc, and
    each gate site's predictor with the convs it gates (the first one reads the site input)."""
    os.makedirs(out_dir, exist_ok=True)
    blobs, offset = [], 0

    def put(t):
        nonlocal offset
        a = t.detach().numpy().astype('<f4')
        blobs.append(a.tobytes())
        entry = {'offset': offset, 'dims': list(a.shape)}
        offset += a.size
        return entry

    convs = [{'name': c.name, 'kind': c.kind, 'stride': c.stride, 'pad': c.pad, 'outSize': c.out_size,
              'weights': put(student.w[i]), 'bias': put(student.b[i])} for i, c in enumerate(SPECS)]
    sites = []
    for g in gates:
        pred = ({'op': 'gemm', 'weights': put(g.lin.weight), 'bias': put(g.lin.bias)} if g.kind == 'group' else
                {'op': 'conv', 'kernel': g.k, 'stride': g.site.stride, 'pad': g.pad,
                 'weights': put(g.conv.weight), 'bias': put(g.conv.bias)})
        sites.append({'convs': [c.name for c in g.convs], 'predictor': pred})
    fc = put(student.fc)
    with open(os.path.join(out_dir, 'gates.bin'), 'wb') as f:
        f.write(b''.join(blobs))
    kind, n = parse_granularity(args.granularity)
    doc = {
        'format': 'facegate-relu-zero-gates/1',
        'weightsFile': 'gates.bin',
        'granularity': {'name': args.granularity, 'kind': kind, 'size': n},
        'predictor': args.predictor,
        'threshold': 0.0,
        'convWeights': 'fine-tuned' if args.finetune else 'original',
        'convs': convs,
        'sites': sites,
        'fc': fc,
        **spec_meta,
    }
    with open(os.path.join(out_dir, 'gates.json'), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')


# ---------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default='/tmp/facegate-train', help='export-crops.ts output')
    ap.add_argument('--out', help='committed outputs (default training/output; a temp dir with --smoke)')
    ap.add_argument('--work', help='checkpoints and logs (default <data>/runs/<tag>)')
    ap.add_argument('--granularity', default='tile4', help='pixel | tileN (N x N pixels) | group16')
    ap.add_argument('--predictor', default='3x3', choices=['1x1', '3x3'],
                    help='spatial predictor of stride-1 blocks (strided convs use their own kernel)')
    ap.add_argument('--target', type=float, default=0.3, help='MAC fraction to skip')
    ap.add_argument('--sparsity-weight', type=float, default=10.0)
    ap.add_argument('--site-min-open', type=float, default=0.0,
                    help='per-site budget: each site (stem, block) keeps at least this MAC fraction open on '
                         'every face, so the target cannot be met by dropping whole blocks')
    ap.add_argument('--relation-weight', type=float, default=0.0,
                    help='weight of the pairwise-relation loss (in-batch cosine matrix vs the teacher)')
    ap.add_argument('--steps', type=int, default=4500)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--lr-gates', type=float, default=1e-3)
    ap.add_argument('--lr-convs', type=float, default=1e-4)
    ap.add_argument('--finetune', action=argparse.BooleanOptionalAction, default=True,
                    help='fine-tune conv and fc weights too (else only the predictors learn)')
    ap.add_argument('--held-out', type=float, default=0.2, help='fraction of labelled calib crops')
    ap.add_argument('--eval-every', type=int, default=1500)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--resume', action='store_true', help='continue from <work>/checkpoint.pt')
    ap.add_argument('--init', help='start from an earlier output directory (e.g. training/output) instead of '
                                   'the dense network with fitted predictors')
    ap.add_argument('--fixture', action='store_true', help=f'also write the test fixture to {FIXTURE_DIR}')
    ap.add_argument('--smoke', action='store_true', help='a few steps on the test fixture crops (< 60 s)')
    args = ap.parse_args()

    started = time.time()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    tag = (f'{args.granularity}-{args.predictor}-t{args.target:g}'
           + (f'-min{args.site_min_open:g}' if args.site_min_open else '')
           + (f'-rel{args.relation_weight:g}' if args.relation_weight else '')
           + ('' if args.finetune else '-gatesonly'))

    weights = load_tfjs_weights(WEIGHTS_MANIFEST)
    teacher = FaceRecNet(weights).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    if args.smoke:
        expected, crops, onnx_teacher = load_fixture(FIXTURE_DIR)
        persons = [None] * len(crops)
        train_ids = held_ids = np.arange(len(crops))
        celeba_ids = np.zeros(0, np.int64)
        data_meta = {'source': 'test fixture', 'crops': len(crops)}
        args.steps, args.batch, args.eval_every = 3, 2, 3
        out_dir = args.out or tempfile.mkdtemp(prefix='gates-smoke-')
        work = args.work or out_dir
    else:
        index, crops, onnx_teacher = load_export(args.data)
        persons = [e['person'] for e in index['crops']]
        train_ids, held_ids, celeba_ids = split_held_out(index, rng, args.held_out)
        out_dir = args.out or os.path.join(ROOT, 'training/output')
        work = args.work or os.path.join(args.data, 'runs', tag)
        data_meta = {
            'folders': index['folders'], 'lfwDevUsed': False, 'images': index['images'],
            'crops': index['count'], 'labelledCalibCrops': sum(p is not None for p in persons),
            'trainCrops': len(train_ids), 'heldOutCrops': len(held_ids), 'heldOutCelebaCrops': len(celeba_ids),
            'extraPerSet': index.get('extraPerSet', 0),
            'heldOut': f'person-disjoint {args.held_out:g} of the labelled lfw/calib crops: every person with 2+ '
                       'images plus random single-image people; crops of held-out images excluded from training',
            'teacher': index['teacher'],
        }
    os.makedirs(work, exist_ok=True)
    log(f'[gates] {tag}: {len(crops)} crops, train {len(train_ids)}, held-out {len(held_ids)}, work {work}')

    # The torch port must be the ONNX model before anything is learned from it.
    check = np.arange(len(crops)) if args.smoke else rng.choice(len(crops), 256, replace=False)
    t_raw, _, _ = embed(teacher, crops[check])
    port_cos = cosine(t_raw, torch.from_numpy(onnx_teacher[check]))
    log(f'[gates] torch vs facerec.fp32 ONNX on {len(check)} crops: cosine min {port_cos.min():.6f}')
    if port_cos.min() <= 0.9999:
        sys.exit('torch forward does not match the ONNX embedder (cosine <= 0.9999)')

    # Embeddings share a large common direction (different people's raw cosine averages 0.84), so raw
    # cosine barely sees identity: the loss compares embeddings centred on the teacher's mean instead.
    centre = torch.from_numpy(onnx_teacher[train_ids].mean(0))
    student = FaceRecNet(weights)
    student.requires_grad_(args.finetune)
    gates = make_gates(args.granularity, args.predictor)
    if args.init:
        load_init(args.init, student, gates)
        log(f'[gates] initialised from {args.init}')
    elif gates[0].kind == 'spatial':
        trace = []
        teacher(normalise(crops[train_ids[rng.choice(len(train_ids), min(64, len(train_ids)), replace=False)]]),
                trace=trace)
        for g, (inp, damage) in zip(gates, trace):
            g.fit(inp, damage)
    groups = [{'params': gates.parameters(), 'lr': args.lr_gates}]
    if args.finetune:
        groups.append({'params': student.parameters(), 'lr': args.lr_convs})
    opt = torch.optim.Adam(groups)
    base_lrs = [g['lr'] for g in opt.param_groups]
    step, train_time = 0, 0.0
    ckpt_path = os.path.join(work, 'checkpoint.pt')
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        student.load_state_dict(ck['student'])
        gates.load_state_dict(ck['gates'])
        opt.load_state_dict(ck['opt'])
        step, train_time = ck['step'], ck['trainTime']
        gen.set_state(ck['gen'])
        log(f'[gates] resumed at step {step}')

    # The skip target ramps up over the first 40% of steps so the network adapts gradually; the learning
    # rates drop 10x for the last 20%.
    ramp = max(1, int(0.4 * args.steps))
    while step < args.steps:
        t0 = time.time()
        target = args.target * min(1.0, (step + 1) / ramp)
        for g, lr in zip(opt.param_groups, base_lrs):
            g['lr'] = lr * (0.1 if step >= 0.8 * args.steps else 1.0)
        ids = train_ids[torch.randint(len(train_ids), (args.batch,), generator=gen).numpy()]
        x = augment(crops[ids], gen)
        with torch.no_grad():
            t_emb, _ = teacher(x)
        s_emb, masks = student(x, gates)
        distill = (1 - cosine(s_emb - centre, t_emb - centre)).mean()
        executed = executed_fraction(masks)
        loss = distill + args.sparsity_weight * F.relu(executed - (1 - target)) ** 2
        if args.site_min_open > 0:
            loss = loss + args.sparsity_weight * (F.relu(args.site_min_open - site_open_fractions(masks)) ** 2).mean()
        if args.relation_weight > 0:
            loss = loss + args.relation_weight * relation_loss(s_emb, t_emb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        train_time += time.time() - t0
        if step % 25 == 0 or step == args.steps:
            log(f'[gates] step {step}/{args.steps} 1-cos {distill.item():.4f} skip {1 - executed.item():.3f} '
                f'(target {target:.3f}) {train_time / step:.2f} s/step')
        if step % args.eval_every == 0 or step == args.steps:
            torch.save({'student': student.state_dict(), 'gates': gates.state_dict(), 'opt': opt.state_dict(),
                        'step': step, 'gen': gen.get_state(), 'trainTime': train_time}, ckpt_path)
        if step % args.eval_every == 0 and step < args.steps:
            r = evaluate(student, gates, teacher, crops[held_ids], [persons[i] for i in held_ids], centre)
            log(f"[gates] eval step {step}: held-out cosine mean {r['cosine']['mean']} p5 {r['cosine']['p5']} "
                f"min {r['cosine']['min']} (centred {r['centredCosine']['mean']}), skipped MACs "
                f"{r['skippedMacs']} (net of predictors {r['netSkippedMacs']})")

    result = evaluate(student, gates, teacher, crops[held_ids], [persons[i] for i in held_ids], centre)
    if len(celeba_ids):
        celeba = evaluate(student, gates, teacher, crops[celeba_ids], [persons[i] for i in celeba_ids], centre)
        result['celeba'] = {k: celeba[k] for k in ('cosine', 'centredCosine', 'skippedMacs', 'verification', 'crops')}
        log(f"[gates] held-out CelebA ({celeba['crops']} crops): cosine mean {celeba['cosine']['mean']}, "
            f"skipped {celeba['skippedMacs']}, verification {celeba['verification']}")
    log(f"[gates] held-out: cosine to the teacher mean {result['cosine']['mean']} p5 {result['cosine']['p5']} "
        f"min {result['cosine']['min']} (centred {result['centredCosine']['mean']}), skipped MACs "
        f"{result['skippedMacs']}, predictors {result['predictorMacs']}, net {result['netSkippedMacs']}")
    for layer in result['layers']:
        log(f"[gates]   {layer['name']:<26} {layer['macs'] / 1e6:6.2f}M MACs  skip {layer['skip']:.3f}")
    ver = result['verification']
    log(f"[gates] verification on held-out calib ({ver['teacher']['genuinePairs']} genuine / "
        f"{ver['teacher']['impostorPairs']} impostor pairs): teacher {ver['teacher']} gated {ver['gated']} "
        f"decision flips at teacher FAR 1e-2: {ver['decisionFlipsAtTeacherFar0.01']}")
    log(f"RESULT {tag} skipped={result['skippedMacs']:.4f} net={result['netSkippedMacs']:.4f} "
        f"cos_mean={result['cosine']['mean']:.5f} cos_p5={result['cosine']['p5']:.5f} "
        f"cos_min={result['cosine']['min']:.5f} centred={result['centredCosine']['mean']:.5f} steps={args.steps} train_s={train_time:.0f}")

    meta = {'totalMacs': TOTAL_MACS}
    write_output(out_dir, student, gates, args, meta)
    manifest = {
        'data': data_meta,
        'seed': args.seed,
        'init': os.path.relpath(os.path.abspath(args.init), ROOT) if args.init else None,
        'steps': args.steps,
        'batch': args.batch,
        'lr': {'gates': args.lr_gates, 'convs': args.lr_convs if args.finetune else None,
               'schedule': 'Adam, constant, x0.1 for the last 20% of steps'},
        'granularity': args.granularity,
        'predictor': args.predictor,
        'finetune': args.finetune,
        'skipTarget': args.target,
        'sparsityWeight': args.sparsity_weight,
        'siteMinOpen': args.site_min_open,
        'relationWeight': args.relation_weight,
        'loss': '(1 - cosine to the dense fp32 teacher, both centred on the mean teacher embedding) '
                '+ w * relu(executed MAC fraction - (1 - target))^2, '
                'target ramped over the first 40% of steps'
                + (' + w * mean over sites and faces of relu(siteMinOpen - site open MAC fraction)^2'
                   if args.site_min_open else '')
                + (' + relationWeight * mean squared change of in-batch pair cosines' if args.relation_weight else ''),
        'command': 'training/gates.py ' + ' '.join(sys.argv[1:]),
        'augmentation': 'flip, shift +-4 px, scale 0.95-1.05, rotation +-4 deg, brightness +-20, contrast +-15%, '
                        'colour gains +-8%, low light 30% (gamma 1.2-2.2), blur 30% (3x3 binomial)',
        'portCheck': {'crops': len(check), 'minCosine': round(float(port_cos.min()), 7)},
        'heldOut': result,
        'trainingSeconds': round(train_time),
        'torch': torch.__version__,
        'python': platform.python_version(),
        'threads': args.threads,
    }
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')

    if args.fixture and not args.smoke:
        write_fixture(student, gates, crops, onnx_teacher, held_ids, index)
    log(f'[gates] wrote {out_dir} in {time.time() - started:.0f} s')


def biome_json(value, indent=0):
    """JSON laid out as the repository's formatter (biome) does, so the fixture passes `npm run lint`:
    objects and lists one item per line, number lists filled up to 110 columns."""
    pad, inner = '  ' * indent, '  ' * (indent + 1)
    if isinstance(value, dict):
        items = [f'{inner}{json.dumps(k)}: {biome_json(v, indent + 1)}' for k, v in value.items()]
        return '{\n' + ',\n'.join(items) + f'\n{pad}}}'
    if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
        lines, line = [], ''
        for k, v in enumerate(value):
            item = re.sub(r'e\+?(-?)0*(\d)', r'e\1\2', json.dumps(v)) + (',' if k < len(value) - 1 else '')
            if line and len(inner) + len(line) + 1 + len(item) > 110:
                lines.append(line)
                line = item
            else:
                line = f'{line} {item}' if line else item
        lines.append(line)
        return '[\n' + '\n'.join(inner + ln for ln in lines) + f'\n{pad}]'
    if isinstance(value, list):
        return '[\n' + ',\n'.join(inner + biome_json(v, indent + 1) for v in value) + f'\n{pad}]'
    return json.dumps(value)


def write_fixture(student, gates, crops, onnx_teacher, held_ids, index):
    """Two held-out crops with the dense ONNX teacher's and the gated torch model's embeddings, and
    which gates are open, for test/unit/models/gated."""
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    entries = []
    for k, i in enumerate(held_ids[:2]):
        png = f'crop-{k}.png'
        write_png(os.path.join(FIXTURE_DIR, png), crops[i])
        with torch.no_grad():
            emb, masks = student(normalise(crops[i:i + 1]), gates)
        entries.append({'png': png, 'source': index['crops'][i]['file'],
                        'teacher': [round(float(v), 6) for v in onnx_teacher[i]],
                        'gated': [round(float(v), 6) for v in emb[0]],
                        'openFraction': [round(float(m.mean()), 6) for m in masks]})
    with open(os.path.join(FIXTURE_DIR, 'expected.json'), 'w') as f:
        f.write(biome_json({'layers': [s.name for s in SPECS], 'crops': entries}) + '\n')


if __name__ == '__main__':
    main()
