"""Cross-checks `quantkit demo`'s static int8 models against PyTorch eager-mode quantization (not run by CI).

For the MLP and the CNN whose fp32 weights `quantkit demo` trained (safetensors in its models folder), it
1. runs PyTorch's own PTQ (fuse, QuantWrapper, get_default_qconfig('x86'), 2048 random training images, convert) on
   the same weights, for three calibration seeds: the accuracy drop PyTorch itself gets on this model;
2. checks that QuantKit's converted weights, weight scales and biases (the demo's static int8 file) are identical to
   PyTorch's conversion (BN folding, per-channel weight observer, weight quantization);
3. runs PyTorch's x86 kernels with every parameter taken from QuantKit's file (activation scales and zero points
   included): its accuracy and agreement should be the demo's.

    python3 -m venv /tmp/tv
    /tmp/tv/bin/pip install --no-deps "torch==2.13.0+cpu"     # the CPU wheel (PyPI's default pulls CUDA)
    /tmp/tv/bin/pip install typing_extensions sympy filelock networkx jinja2 fsspec numpy safetensors
    /tmp/tv/bin/python Tests/PyTorchCrossCheck/compare_demo.py .quantkit-demo
"""
import copy
import gzip
import sys

import numpy as np
import torch
import torch.ao.quantization as tq
import torch.nn as nn
from collections import OrderedDict
from safetensors.numpy import load_file

torch.backends.quantized.engine = 'x86'
torch.set_num_threads(1)
DATA = '/usr/share/datasets/fashion-mnist/'
MODELS = (sys.argv[1] if len(sys.argv) > 1 else '.quantkit-demo').rstrip('/') + '/'


def images(name):
    raw = gzip.open(DATA + name).read()
    n = int.from_bytes(raw[4:8], 'big')
    x = torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).reshape(n, 1, 28, 28).float().div(255)
    return (x - torch.tensor([0.2860])) / torch.tensor([0.3530])   # ToTensor + Normalize((0.2860,), (0.3530,))


def labels(name):
    raw = gzip.open(DATA + name).read()
    return torch.frombuffer(bytearray(raw[8:]), dtype=torch.uint8).long()


MODELS_SPEC = {
    'mlp': dict(
        make=lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                                   nn.Linear(128, 10)),
        groups=[['1', '2'], ['3', '4']], layers=['module.1', 'module.3', 'module.5']),
    'cnn': dict(
        make=lambda: nn.Sequential(OrderedDict(
            features=nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                                   nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2)),
            flatten=nn.Flatten(),
            classifier=nn.Sequential(nn.Linear(1568, 64), nn.ReLU(), nn.Linear(64, 10)))),
        groups=[['features.0', 'features.1', 'features.2'], ['features.4', 'features.5', 'features.6'],
                ['classifier.0', 'classifier.1']],
        layers=['module.features.0', 'module.features.4', 'module.classifier.0', 'module.classifier.2']),
}


def main():
    xtr = images('train-images-idx3-ubyte.gz')
    xte, yte = images('t10k-images-idx3-ubyte.gz'), labels('t10k-labels-idx1-ubyte.gz')

    def predict(model):
        with torch.no_grad():
            return torch.cat([model(xte[i:i + 500]).argmax(1) for i in range(0, len(xte), 500)])

    def accuracy(p):
        return (p == yte).float().mean().item() * 100

    for name, spec in MODELS_SPEC.items():
        fp32 = spec['make']()
        state = load_file(f'{MODELS}{name}-fp32-5ep.safetensors')
        fp32.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
        fp32.eval()
        p32 = predict(fp32)
        print(f'{name}: fp32 {accuracy(p32):.2f}% (PyTorch {torch.__version__})')

        def ptq(seed, count=2048):
            model = copy.deepcopy(fp32).eval()
            tq.fuse_modules(model, spec['groups'], inplace=True)
            wrapper = tq.QuantWrapper(model)
            wrapper.qconfig = tq.get_default_qconfig('x86')
            wrapper.eval()
            tq.prepare(wrapper, inplace=True)
            order = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(seed))[:count]
            with torch.no_grad():
                for i in range(0, count, 64):
                    wrapper(xtr[order[i:i + 64]])
            return tq.convert(wrapper, inplace=True)

        for seed in range(3):
            p = predict(ptq(seed))
            print(f'  PyTorch PTQ, calibration seed {seed}: {accuracy(p):.2f}% '
                  f'(drop {accuracy(p32) - accuracy(p):.2f} pt), agreement {(p == p32).float().mean() * 100:.2f}%')

        ours = load_file(f'{MODELS}{name}-static-int8.safetensors')
        wrapper = ptq(0)
        for layer in spec['layers']:
            module = wrapper.get_submodule(layer)
            weight = module.weight()
            same = (np.array_equal(weight.int_repr().numpy(), ours[layer + '.weight'])
                    and np.array_equal(weight.q_per_channel_scales().float().numpy(), ours[layer + '.weight_scale'])
                    and np.array_equal(module.bias().detach().numpy(), ours[layer + '.bias']))
            print(f'  {layer}: int8 weights, weight scales and bias identical to PyTorch\'s conversion: {same}')
            qweight = torch._make_per_channel_quantized_tensor(
                torch.from_numpy(ours[layer + '.weight'].copy()),
                torch.from_numpy(ours[layer + '.weight_scale'].astype(np.float64)),
                torch.from_numpy(ours[layer + '.weight_zero_point'].copy()), 0)
            module.set_weight_bias(qweight, torch.from_numpy(ours[layer + '.bias'].copy()))
            module.scale = float(ours[layer + '.scale'][0])
            module.zero_point = int(ours[layer + '.zero_point'][0])
        wrapper.quant.scale = torch.tensor([float(ours['quant.scale'][0])])
        wrapper.quant.zero_point = torch.tensor([int(ours['quant.zero_point'][0])])
        p = predict(wrapper)
        print(f'  PyTorch kernels with every parameter from QuantKit\'s file: {accuracy(p):.2f}%, '
              f'agreement with fp32 {(p == p32).float().mean() * 100:.2f}%')


if __name__ == '__main__':
    main()
