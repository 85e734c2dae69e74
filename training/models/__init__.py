"""Re-identification networks: ResNet and mobile (ImageNet-initialisable) backbones, Hafner et al. (2022)'s ReIDNet, the two-stream baseline, the VI network."""

from .attention import GatedAttention
from .net import ReIDNet
from .mobile import MobileBackbone
from .resnet import ResNet, backbone, build_resnet
from .two_stream import TwoStreamNet
from .vi_net import VINet
from .weights import IMAGENET_URLS, load_pretrained

MODELS = {"reidnet": ReIDNet, "two_stream": TwoStreamNet, "vinet": VINet}

__all__ = ["GatedAttention", "IMAGENET_URLS", "MODELS", "MobileBackbone", "ReIDNet", "ResNet", "TwoStreamNet", "VINet",
           "backbone", "build_resnet", "load_pretrained"]
