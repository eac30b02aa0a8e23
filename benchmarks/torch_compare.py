#!/usr/bin/env python3
"""PyTorch twin of `kiln compare`: the same rows, recipes and split, printed as the
same table, so that kiln's numbers (accuracy, training time, images/s, peak GPU
memory) can be set beside PyTorch's on the same machine.

    kiln compare DATA --split 300/75/75 -o OUT ...        # writes OUT/split.json
    python3 benchmarks/torch_compare.py DATA OUT ...       # reads it, writes OUT/torch/

What is the same as kiln (tools/cmd_compare.cpp, recipe_for):
  - the images: OUT/split.json lists every file of train / val / test by name; the
    class of a file is its folder, classes in sorted order (kiln's order);
  - the models: cnn5 rebuilt layer for layer (models/cnn5.cpp, default flags),
    torchvision's resnet18 and mobilenet_v2 (kiln uses the same module names);
  - the weights: an ONNX file's initializers are mapped onto the torchvision model
    in graph order (Conv -> Conv2d, BatchNormalization -> BatchNorm2d, Gemm -> the
    classifier), checked by shape; batch norm folded into the convolutions becomes
    an identity batch norm (var = 1 - eps) carrying the conv bias and kept in eval
    mode, exactly as kiln's importer does. A kiln .safetensors (kiln import output or
    a kiln train checkpoint) loads by name. --verify-onnx runs the ONNX graph itself
    (a small interpreter below) on a photo and checks the mapped model's logits;
  - the recipes: optimizer, lr, weight decay (none on 1-D parameters), per-stage lr
    decay, schedule per step, augmentation (random resized crop + flip), batch size,
    drop_last, epochs, best checkpoint by validation accuracy, test metrics of it;
  - the measurements: training time (epochs with validation), images/s over the
    training steps, the largest per-epoch peak of torch.cuda.max_memory_allocated.
What differs: image decoding and resizing (PIL instead of stb), random draws, and
the augmentation's sampler (grid_sample per batch instead of kiln's fused kernel).

Runs on the CPU too (--device cpu), where peak memory is not measured ("—").
"""
import argparse
import copy
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

DEFAULT_ROWS = "cnn5,resnet18:head,resnet18:from:layer3,resnet18:all,mobilenet_v2:head,mobilenet_v2:all"
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
STAGES = {"resnet18": ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"],
          "mobilenet_v2": [f"features.{i}" for i in range(19)] + ["classifier"]}
HEAD = {"resnet18": "fc", "mobilenet_v2": "classifier.1"}


# ---------------------------------------------------------------- data

def load_images(root, names, size):
    """uint8 (N, 3, size, size): shorter side resized to size, centre crop (kiln's fit crop)."""
    from PIL import Image
    out = np.empty((len(names), 3, size, size), dtype=np.uint8)
    for i, name in enumerate(names):
        with Image.open(os.path.join(root, name)) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = size / min(w, h)
            im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
            w, h = im.size
            left, top = (w - size) // 2, (h - size) // 2
            out[i] = np.asarray(im.crop((left, top, left + size, top + size))).transpose(2, 0, 1)
    return torch.from_numpy(out)


class SplitData:
    def __init__(self, root, split_json):
        with open(split_json) as f:
            split = json.load(f)
        self.root = root
        self.names = {part: split[part] for part in ("train", "val", "test")}
        self.classes = sorted({os.path.basename(os.path.dirname(n)) for part in self.names.values() for n in part})
        index = {c: i for i, c in enumerate(self.classes)}
        self.labels = {part: torch.tensor([index[os.path.basename(os.path.dirname(n))] for n in names])
                       for part, names in self.names.items()}
        self.cache = {}

    def images(self, part, size):
        if (part, size) not in self.cache:
            self.cache[(part, size)] = load_images(self.root, self.names[part], size)
        return self.cache[(part, size)]


def parse_augment(spec):
    """'crop:0.35-1,hflip:0.5' -> (crop scale range or None, flip probability)."""
    crop, flip = None, 0.0
    for item in filter(None, spec.split(",")):
        name, _, arg = item.partition(":")
        if name == "crop":
            lo, _, hi = arg.partition("-")
            crop = (float(lo), float(hi or 1))
        elif name == "hflip":
            flip = float(arg)
        else:
            raise SystemExit(f"torch_compare: augmentation '{name}' is not mirrored here")
    return crop, flip


def augment(x, crop, flip, generator):
    """Per-image random resized crop (ratio 3/4..4/3) and horizontal flip of a float
    batch, as one affine map per image sampled bilinearly (kiln's formulation).
    Neither (--augment-head none): the images as they are, no resampling."""
    if crop is None and flip == 0:
        return x
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3)
    rand = lambda: torch.rand(n, generator=generator)
    sx = sy = torch.ones(n)
    cx = cy = torch.zeros(n)
    if crop is not None:
        area = crop[0] + (crop[1] - crop[0]) * rand()
        ratio = torch.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * rand())
        sx = torch.sqrt(area * ratio).clamp(max=1)
        sy = torch.sqrt(area / ratio).clamp(max=1)
        cx = (1 - sx) * (2 * rand() - 1)
        cy = (1 - sy) * (2 * rand() - 1)
    flips = torch.where(rand() < flip, -1.0, 1.0)
    theta[:, 0, 0], theta[:, 0, 2] = sx * flips, cx
    theta[:, 1, 1], theta[:, 1, 2] = sy, cy
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


# ---------------------------------------------------------------- models

def make_cnn5(classes, size, filters=(32, 64, 128, 256, 512), dense=256, dropout=0.2):
    layers, channels = [], 3
    for i, f in enumerate(filters):
        layers.append(nn.Sequential(nn.Conv2d(channels, f, 3, 1, 1, bias=False), nn.BatchNorm2d(f), nn.ReLU(),
                                    nn.MaxPool2d(2)))
        channels, size = f, size // 2
    head = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, dense), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(dense, classes))
    return nn.Sequential(*layers, head)


def read_safetensors(path):
    with open(path, "rb") as f:
        header_len = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_len))
        data = f.read()
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "F16": np.float16}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dtypes[info["dtype"]]).reshape(info["shape"]).copy())
    return out, header.get("__metadata__", {})


def onnx_weights(path):
    """The ONNX graph's parameter nodes in order: ('conv', w, b|None), ('bn', scale, B, mean, var, eps), ('gemm', w, b).
    Read by benchmarks/onnx_wire.py, so the `onnx` package is not needed."""
    from onnx_wire import read_onnx
    nodes, arrays = read_onnx(path)
    init = {name: torch.from_numpy(a) for name, a in arrays.items()}
    ops = []
    for node in nodes:
        inputs, attributes = node["inputs"], node["attributes"]
        if node["op_type"] == "Conv":
            ops.append(("conv", init[inputs[1]], init[inputs[2]] if len(inputs) > 2 else None))
        elif node["op_type"] == "BatchNormalization":
            ops.append(("bn",) + tuple(init[i] for i in inputs[1:5]) + (attributes.get("epsilon", 1e-5),))
        elif node["op_type"] == "Gemm":
            w = init[inputs[1]]
            ops.append(("gemm", w if attributes.get("transB", 0) else w.t(), init[inputs[2]]))
    return ops


def load_onnx_into(model, path):
    """Maps the ONNX parameters onto the model's Conv2d / BatchNorm2d / Linear in order.
    Returns the batch norms that became identities (folded), to be kept in eval mode."""
    ops = onnx_weights(path)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    onnx_convs = [o for o in ops if o[0] == "conv"]
    onnx_bns = [o for o in ops if o[0] == "bn"]
    gemm = [o for o in ops if o[0] == "gemm"]
    assert len(onnx_convs) == len(convs), f"{path}: {len(onnx_convs)} Conv nodes, the model has {len(convs)} convs"
    assert len(gemm) == 1 and gemm[0][1].shape == linear.weight.shape, f"{path}: classifier shape differs"
    folded = []
    with torch.no_grad():
        for conv, (_, w, _b) in zip(convs, onnx_convs):
            assert conv.weight.shape == w.shape, f"{path}: conv weight {tuple(w.shape)} vs {tuple(conv.weight.shape)}"
            conv.weight.copy_(w)
        if onnx_bns:
            assert len(onnx_bns) == len(bns), f"{path}: {len(onnx_bns)} BatchNormalization nodes vs {len(bns)}"
            for bn, (_, scale, bias, mean, var, eps) in zip(bns, onnx_bns):
                bn.weight.copy_(scale), bn.bias.copy_(bias), bn.running_mean.copy_(mean), bn.running_var.copy_(var)
                bn.eps = eps
        else:  # folded: every conv carries a bias, and the conv's batch norm becomes identity + bias
            assert len(bns) == len(convs), f"{path}: folded batch norm, but the model's convs and norms do not pair"
            for bn, (_, _w, b) in zip(bns, onnx_convs):
                assert b is not None, f"{path}: no BatchNormalization nodes and a conv without bias"
                bn.weight.fill_(1), bn.bias.copy_(b), bn.running_mean.zero_(), bn.running_var.fill_(1 - bn.eps)
                folded.append(bn)
        linear.weight.copy_(gemm[0][1]), linear.bias.copy_(gemm[0][2])
    return folded


def run_onnx_graph(path, x):
    """A reference interpreter for the ops of the shared MobileNetV2 (and a plain ResNet):
    Conv, Clip, Relu, Add, MaxPool, GlobalAveragePool, Flatten, Gemm, Constant."""
    from onnx_wire import read_onnx_graph
    graph = read_onnx_graph(path)
    values = {name: torch.from_numpy(a) for name, a in graph["initializers"].items()}
    values[graph["inputs"][0]] = x
    attr = lambda n, k, d: n["attributes"].get(k, d)
    for n in graph["nodes"]:
        i = [values.get(name) if name else None for name in n["inputs"]]
        if n["op_type"] == "Constant":
            y = torch.from_numpy(attr(n, "value", None))
        elif n["op_type"] == "Conv":
            p = attr(n, "pads", [0, 0, 0, 0])
            y = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, attr(n, "strides", [1, 1]), (p[0], p[1]),
                         attr(n, "dilations", [1, 1]), attr(n, "group", 1))
        elif n["op_type"] == "Clip":
            y = i[0].clamp(float(i[1]) if len(i) > 1 and i[1] is not None else None,
                           float(i[2]) if len(i) > 2 and i[2] is not None else None)
        elif n["op_type"] == "Relu":
            y = F.relu(i[0])
        elif n["op_type"] == "Add":
            y = i[0] + i[1]
        elif n["op_type"] == "MaxPool":
            p = attr(n, "pads", [0, 0, 0, 0])
            y = F.max_pool2d(i[0], attr(n, "kernel_shape", None), attr(n, "strides", None), (p[0], p[1]))
        elif n["op_type"] == "GlobalAveragePool":
            y = i[0].mean((2, 3), keepdim=True)
        elif n["op_type"] == "Flatten":
            y = i[0].flatten(attr(n, "axis", 1))
        elif n["op_type"] == "Gemm":
            w = i[1] if attr(n, "transB", 0) else i[1].t()
            y = F.linear(i[0], w, i[2])
        else:
            raise SystemExit(f"run_onnx_graph: op {n['op_type']} is not interpreted here")
        values[n["outputs"][0]] = y
    return values[graph["outputs"][0]]


def make_zoo(arch, weights, classes):
    """torchvision's model with `weights` loaded, then a fresh head for `classes`.
    Returns (model, batch norms to keep in eval mode)."""
    ctor = {"resnet18": torchvision.models.resnet18, "mobilenet_v2": torchvision.models.mobilenet_v2}[arch]
    folded = []
    if weights.endswith(".onnx"):
        model = ctor(num_classes=1000)
        folded = load_onnx_into(model, weights)
    else:
        tensors, metadata = read_safetensors(weights)
        if metadata.get("kiln.format", "state_dict") != "state_dict":  # a kiln train checkpoint: the model part
            tensors = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        model = ctor(num_classes=tensors[HEAD[arch] + ".weight"].shape[0])
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]  # kiln keeps no such counter
        assert not missing and not unexpected, f"{weights}: missing {missing[:5]}, unexpected {unexpected[:5]}"
        frozen = [n for n in metadata.get("kiln.frozen_batchnorm", "").split(",") if n]
        folded = [model.get_submodule(n) for n in frozen]
    parent, _, leaf = HEAD[arch].rpartition(".")
    head_parent = model.get_submodule(parent) if parent else model
    old = getattr(head_parent, leaf) if not leaf.isdigit() else head_parent[int(leaf)]
    new = nn.Linear(old.in_features, classes)
    if arch == "mobilenet_v2":  # torchvision's (and kiln's) init of this head
        nn.init.normal_(new.weight, 0, 0.01), nn.init.zeros_(new.bias)
    if leaf.isdigit():
        head_parent[int(leaf)] = new
    else:
        setattr(head_parent, leaf, new)
    return model, folded


def apply_finetune(model, arch, finetune):
    if finetune == "all":
        return
    first = HEAD[arch].split(".")[0] if finetune == "head" else finetune[len("from:"):]
    stages = STAGES[arch]
    trainable = stages[stages.index(first):]
    for name, p in model.named_parameters():
        p.requires_grad = any(name.startswith(s + ".") for s in trainable)


def param_groups(model, lr, weight_decay, arch=None, decay=1.0):
    """No weight decay on 1-D parameters; with decay < 1, kiln's stage groups."""
    if decay >= 1.0 or arch is None:
        params = [p for p in model.parameters() if p.requires_grad]
        return [{"params": [p for p in params if p.dim() > 1], "lr": lr, "weight_decay": weight_decay},
                {"params": [p for p in params if p.dim() <= 1], "lr": lr, "weight_decay": 0.0}]
    stages, groups = STAGES[arch], []
    for i, stage in enumerate(stages):
        stage_lr = lr * decay ** (len(stages) - 1 - i)
        params = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith(stage + ".")]
        groups += [{"params": [p for p in params if p.dim() > 1], "lr": stage_lr, "weight_decay": weight_decay},
                   {"params": [p for p in params if p.dim() <= 1], "lr": stage_lr, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


# ---------------------------------------------------------------- recipes (tools/cmd_compare.cpp, recipe_for)

def recipe(row, a):
    if row == "cnn5":
        return dict(arch="cnn5", finetune="all", size=a.size_scratch, epochs=a.epochs_scratch, optimizer="sgd",
                    lr=0.05, weight_decay=5e-4, schedule="onecycle", augment="crop:0.35-1,hflip:0.5",
                    freeze_bn=False, stage_lr_decay=1.0)
    arch, _, finetune = row.partition(":")
    head = finetune == "head"
    augment = "crop:0.5-1,hflip:0.5"
    if head:
        augment = "" if a.augment_head == "none" else a.augment_head
    return dict(arch=arch, finetune=finetune, size=a.size_finetune, epochs=a.epochs_finetune, optimizer="adamw",
                lr=1e-3 if head else 5e-4, weight_decay=1e-4, schedule="cosine", augment=augment,
                freeze_bn=head, stage_lr_decay=1.0 if head else (0.5 if arch == "resnet18" else 0.8))


def lr_lambda(schedule, total):
    if schedule == "cosine":  # kiln's cosine: a half cosine from 1 to 0 over the run
        return lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    raise ValueError(schedule)


def accuracy_and_macro(logits, labels, classes):
    pred = logits.argmax(1).numpy()
    y = labels.numpy()
    precision, recall, f1 = [], [], []
    for k in range(classes):
        tp = int(((pred == k) & (y == k)).sum())
        fp = int(((pred == k) & (y != k)).sum())
        fn = int(((pred != k) & (y == k)).sum())
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        precision.append(p), recall.append(r), f1.append(2 * p * r / (p + r) if p + r else 0.0)
    return float((pred == y).mean()), float(np.mean(precision)), float(np.mean(recall)), float(np.mean(f1))


def evaluate(model, images, labels, mean, std, device, batch):
    model.eval()
    outs, loss = [], 0.0
    with torch.no_grad():
        for s in range(0, len(images), batch):
            x = (images[s:s + batch].to(device).float() / 255 - mean) / std
            out = model(x).float().cpu()
            loss += F.cross_entropy(out, labels[s:s + batch], reduction="sum").item()
            outs.append(out)
    return torch.cat(outs), loss / max(len(images), 1)


def run_row(row, data, a, device, out_dir):
    r = recipe(row, a)
    classes = len(data.classes)
    torch.manual_seed(a.seed)
    train_x, val_x, test_x = (data.images(p, r["size"]) for p in ("train", "val", "test"))
    train_y, val_y, test_y = data.labels["train"], data.labels["val"], data.labels["test"]
    keep_eval = []
    if r["arch"] == "cnn5":
        model = make_cnn5(classes, r["size"])
        x = train_x.float() / 255
        mean, std = x.mean((0, 2, 3)).tolist(), x.std((0, 2, 3), unbiased=False).tolist()
    else:
        weights = a.resnet18 if r["arch"] == "resnet18" else a.mobilenet_v2
        model, keep_eval = make_zoo(r["arch"], weights, classes)
        apply_finetune(model, r["arch"], r["finetune"])
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if r["freeze_bn"]:
            keep_eval = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    model.to(device)
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1)
    groups = param_groups(model, r["lr"], r["weight_decay"], None if r["arch"] == "cnn5" else r["arch"],
                          r["stage_lr_decay"])
    if r["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(groups, lr=r["lr"], momentum=0.9, nesterov=True)
    else:
        optimizer = torch.optim.AdamW(groups, lr=r["lr"])
    n = len(train_x)
    drop_last = n > a.batch_size
    total = max(1, n // a.batch_size) * r["epochs"]  # kiln's schedule length
    if r["schedule"] == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in groups],
                                                        total_steps=total)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(r["schedule"], total))
    crop, flip = parse_augment(r["augment"])
    generator = torch.Generator().manual_seed(a.seed)
    cuda = device.type == "cuda"
    best, best_acc, epochs, start = None, -1.0, [], time.perf_counter()
    for epoch in range(1, r["epochs"] + 1):
        model.train()
        for m in keep_eval:
            m.eval()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        order = torch.randperm(n, generator=generator)
        for s in range(0, n - (a.batch_size - 1 if drop_last else 0), a.batch_size):
            idx = order[s:s + a.batch_size]
            x = train_x[idx].to(device, non_blocking=True).float() / 255
            x = (augment(x, crop, flip, generator) - mean_t) / std_t
            y = train_y[idx].to(device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
        val_logits, val_loss = evaluate(model, val_x, val_y, mean_t, std_t, device, a.batch_size)
        val_acc = float((val_logits.argmax(1) == val_y).float().mean()) if len(val_y) else 0.0
        epochs.append(dict(epoch=epoch, train_loss=loss_sum / max(seen, 1), val_loss=val_loss, val_accuracy=val_acc,
                           seconds=seconds, images=seen, peak_memory_mb=peak))
        print(f"  epoch {epoch:3d}  train loss {loss_sum / max(seen, 1):.4f}  val loss {val_loss:.4f} acc {val_acc:.4f}"
              f"  {seen / seconds:6.0f} img/s", flush=True)
        if val_acc > best_acc:
            best_acc, best = val_acc, copy.deepcopy(model.state_dict())
    training_seconds = time.perf_counter() - start
    if best is not None:
        model.load_state_dict(best)
    logits, _ = evaluate(model, test_x, test_y, mean_t, std_t, device, a.batch_size)
    acc, p, rec, f1 = accuracy_and_macro(logits, test_y, classes)
    step_seconds = sum(e["seconds"] for e in epochs)
    peaks = [e["peak_memory_mb"] for e in epochs if e["peak_memory_mb"] is not None]
    result = dict(model=row, status="ok", test_accuracy=acc, macro_precision=p, macro_recall=rec, macro_f1=f1,
                  training_seconds=training_seconds,
                  images_per_second=sum(e["images"] for e in epochs) / step_seconds if step_seconds else 0.0,
                  peak_memory_mb=max(peaks) if peaks else None,
                  parameters=sum(q.numel() for q in model.parameters()),
                  trainable_parameters=sum(q.numel() for q in model.parameters() if q.requires_grad),
                  epochs=r["epochs"], image_size=r["size"], recipe=json.dumps(r), run_dir=out_dir)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "epochs.json"), "w") as f:
        json.dump(epochs, f, indent=1)
    return result


# ---------------------------------------------------------------- the table (report/comparison.cpp's formats)

HEADERS = ["model", "test acc", "macro P", "macro R", "macro F1", "training time", "images/s", "peak memory (MiB)",
           "parameters", "trainable", "epochs", "size"]


def duration(seconds):
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def cells(r):
    if r["status"] != "ok":
        return [r["model"]] + ["—"] * (len(HEADERS) - 1)
    return [r["model"], f"{100 * r['test_accuracy']:.2f}%", f"{r['macro_precision']:.4f}", f"{r['macro_recall']:.4f}",
            f"{r['macro_f1']:.4f}", duration(r["training_seconds"]), f"{r['images_per_second']:.1f}" if r["images_per_second"] < 100 else f"{r['images_per_second']:.0f}",
            "—" if r["peak_memory_mb"] is None else f"{r['peak_memory_mb']:.0f}", f"{r['parameters']:,}",
            f"{r['trainable_parameters']:,}", str(r["epochs"]), str(r["image_size"])]


def write_tables(out, rows, header):
    os.makedirs(out, exist_ok=True)
    md = [f"# torch_compare (PyTorch {torch.__version__}, torchvision {torchvision.__version__})", "",
          f"- data: `{header['data']}`", f"- split: {header['split']}", f"- device: {header['device']}", "",
          "| " + " | ".join(HEADERS) + " |", "| --- |" + " ---: |" * (len(HEADERS) - 1)]
    md += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |" for r in rows]
    md += ["", "Rows not run:", ""] + [f"- **{r['model']}**: {r['status']}" for r in rows if r["status"] != "ok"]
    for name, text in (("comparison.md", "\n".join(md) + "\n"),
                       ("comparison.json", json.dumps(dict(header, rows=rows), indent=2) + "\n")):
        tmp = os.path.join(out, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(out, name))
    import csv
    import io
    buffer = io.StringIO()
    keys = ["model", "status", "test_accuracy", "macro_precision", "macro_recall", "macro_f1", "training_seconds",
            "images_per_second", "peak_memory_mb", "parameters", "trainable_parameters", "epochs", "image_size",
            "recipe", "run_dir"]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(keys)
    for r in rows:
        writer.writerow(["" if r.get(k) is None else r.get(k) for k in keys])
    tmp = os.path.join(out, "comparison.csv.tmp")
    with open(tmp, "w") as f:
        f.write(buffer.getvalue())
    os.replace(tmp, os.path.join(out, "comparison.csv"))


def print_table(rows):
    lines = [HEADERS] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    for line in lines:
        print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line)))
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['model']}: {r['status']}")


# ---------------------------------------------------------------- main

def verify_onnx(path, arch, photo):
    """The mapped torchvision model and the ONNX graph give the same logits on a photo."""
    x = load_images(os.path.dirname(photo), [os.path.basename(photo)], 224).float() / 255
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    ctor = {"resnet18": torchvision.models.resnet18, "mobilenet_v2": torchvision.models.mobilenet_v2}[arch]
    model = ctor(num_classes=1000)
    load_onnx_into(model, path)
    with torch.no_grad():
        mapped = model.eval()(x)
        reference = run_onnx_graph(path, x)
    diff = (mapped - reference).abs().max().item()
    print(f"verify {path} on {os.path.basename(photo)}: top-1 {mapped.argmax().item()} "
          f"(reference {reference.argmax().item()}), max |logit difference| {diff:.2e}")
    if diff > 1e-3 * max(1.0, reference.abs().max().item()) or mapped.argmax() != reference.argmax():
        raise SystemExit("verify: the mapped model does not reproduce the ONNX graph")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", help="the image folder kiln compare was given")
    p.add_argument("compare_dir", help="kiln compare's -o folder (its split.json is used)")
    p.add_argument("--rows", default=DEFAULT_ROWS)
    p.add_argument("--mobilenet-v2", default="")
    p.add_argument("--resnet18", default="")
    p.add_argument("--epochs-scratch", type=int, default=30)
    p.add_argument("--epochs-finetune", type=int, default=10)
    p.add_argument("--size-scratch", type=int, default=96)
    p.add_argument("--size-finetune", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--augment-head", default="crop:0.5-1,hflip:0.5",
                   help="augmentation of the :head rows (none: as kiln compare --augment-head none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--verify-onnx", default="", help="a photo: check the ONNX mapping on it before training")
    p.add_argument("-o", "--out", default="", help="default: COMPARE_DIR/torch")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if not a.mobilenet_v2:
        here = os.path.dirname(os.path.abspath(__file__))
        for root in ("shared", os.path.join(here, "..", "shared"), os.path.join(here, "..", "..", "shared")):
            path = os.path.join(root, "assets/models/mobilenet_v2_imagenet_fp32.onnx")
            if os.path.exists(path):
                a.mobilenet_v2 = os.path.normpath(path)
                break
    out = a.out or os.path.join(a.compare_dir, "torch")
    device = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False  # kiln's f32 is true f32
    torch.backends.cudnn.allow_tf32 = False
    if a.verify_onnx:
        for arch, path in (("mobilenet_v2", a.mobilenet_v2), ("resnet18", a.resnet18)):
            if path.endswith(".onnx"):
                verify_onnx(path, arch, a.verify_onnx)
    data = SplitData(a.data, os.path.join(a.compare_dir, "split.json"))
    header = dict(data=a.data, split=f"{a.compare_dir}/split.json", device=str(device),
                  torch=torch.__version__, torchvision=torchvision.__version__)
    rows = []
    names = [r for r in a.rows.split(",") if r]
    for i, row in enumerate(names):
        arch = row.partition(":")[0]
        weights = {"resnet18": a.resnet18, "mobilenet_v2": a.mobilenet_v2}.get(arch, "-")
        if not weights:
            flag = "--resnet18" if arch == "resnet18" else "--mobilenet-v2"
            rows.append(dict(model=row, status=f"skipped: no {flag} ONNX given"))
            print(f"[{i + 1}/{len(names)}] {row}: skipped: no {flag} ONNX given")
            continue
        print(f"[{i + 1}/{len(names)}] {row}: {json.dumps(recipe(row, a))}", flush=True)
        result = run_row(row, data, a, device, os.path.join(out, row.replace(":", "-")))
        print(f"[{i + 1}/{len(names)}] {row} done: test accuracy {100 * result['test_accuracy']:.2f}%, "
              f"macro F1 {result['macro_f1']:.4f}, {duration(result['training_seconds'])}, "
              f"{result['images_per_second']:.0f} img/s", flush=True)
        rows.append(result)
        write_tables(out, rows, header)
    write_tables(out, rows, header)
    print()
    print_table(rows)
    print(f"wrote {out}/comparison.md, comparison.csv, comparison.json")


if __name__ == "__main__":
    sys.exit(main())
