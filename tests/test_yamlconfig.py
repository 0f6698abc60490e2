"""What a person meets when a key is mistyped: the closest valid names, for specs and training configs."""
import pytest

from conftest import REPO
from datakit import spec
from datakit.train import config as train_config


@pytest.mark.parametrize("assignment, expect", [
    ("split.fram=21", "stages[2].split.fram: unknown field; did you mean 'frames'"),
    ("shard.max_sample=3", "shard.max_sample: unknown field; did you mean 'max_samples'"),
    ("ray.adress=auto", "ray.adress: unknown field; did you mean 'address'?"),
    ("inptu=x", "inptu: unknown field; did you mean 'input'?"),
])
def test_unknown_set_keys_suggest_the_closest_valid_names(assignment, expect):
    with pytest.raises(spec.SpecError) as e:
        spec.load(REPO / "pipelines" / "demo.yaml", [assignment])
    assert expect in str(e.value)
    assert "valid here:" in str(e.value)


def test_unknown_training_keys_suggest_too():
    with pytest.raises(train_config.TrainConfigError) as e:
        train_config.load(REPO / "pipelines" / "train_tiny.yaml", ["optim.lrr=1e-4"])
    assert "optim.lrr: unknown field; did you mean 'lr'?" in str(e.value)
