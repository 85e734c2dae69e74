"""Re-identification networks: ResNet backbones, Hafner et al. (2022)'s ReIDNet, the two-stream baseline, the VI network."""

from .attention import GatedAttention
from .net import ReIDNet
from .resnet import ResNet, build_resnet
from .two_stream import TwoStreamNet
from .vi_net import VINet
from .weights import IMAGENET_URLS, load_pretrained

MODELS = {"reidnet": ReIDNet, "two_stream": TwoStreamNet, "vinet": VINet}

__all__ = ["GatedAttention", "IMAGENET_URLS", "MODELS", "ReIDNet", "ResNet", "TwoStreamNet", "VINet",
           "build_resnet", "load_pretrained"]
