"""Re-identification networks: ResNet backbones, Hafner et al. (2022)'s ReIDNet, the two-stream baseline."""

from .attention import GatedAttention
from .net import ReIDNet
from .resnet import ResNet, build_resnet
from .two_stream import TwoStreamNet
from .weights import IMAGENET_URLS, load_pretrained

MODELS = {"reidnet": ReIDNet, "two_stream": TwoStreamNet}

__all__ = ["GatedAttention", "IMAGENET_URLS", "MODELS", "ReIDNet", "ResNet", "TwoStreamNet",
           "build_resnet", "load_pretrained"]
