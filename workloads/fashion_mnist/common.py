"""Fashion-MNIST data and constants, framework-free; shared by fashion_resnet and fashion_vit."""

from workloads.classification_common import ClassificationCommon, normalized_images
from workloads.fashion_mnist import data
from workloads.inmemory import SPLITS


class FashionMnistCommon(ClassificationCommon):
    """Fashion-MNIST data and constants; subclasses choose the model, target and budget."""

    num_train_examples = data.NUM_TRAIN
    num_eval_train_examples = 2_000  # evaluation costs wall time, not budget: fixed subsets keep it short
    num_validation_examples = 5_000
    num_test_examples = 5_000
    eval_batch_size = 2_000
    train_mean = data.MEAN
    train_stddev = data.STD

    def numpy_splits(self, data_dir: str) -> dict[str, dict]:
        raw = data.load(data_dir)
        return {
            name: normalized_images(raw[f"{name}_x"], raw[f"{name}_y"], self.train_mean, self.train_stddev, 28, 255.0)
            for name in SPLITS
        }
