import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from accel_lib.data import digits_loaders
from accel_lib.models import MLP, SmallCNN
from accel_lib.train import TrainConfig, evaluate, make_optimizer, train


def test_train_learns_digits_quickly():
    splits = digits_loaders(batch_size=64, seed=0)
    model = SmallCNN()
    history = train(model, splits.train, TrainConfig(epochs=3, lr=1e-2, progress=False),
                    val_loader=splits.val)
    assert len(history.loss) == 3 and history.loss[-1] < history.loss[0]
    assert evaluate(model, splits.test) > 0.9
    assert not model.training


def test_training_is_reproducible():
    def run():
        torch.manual_seed(0)
        splits = digits_loaders(seed=0, flatten=True)
        model = MLP()
        train(model, splits.train, TrainConfig(epochs=1, progress=False))
        return next(model.parameters()).detach().clone()

    assert torch.equal(run(), run())


def test_evaluate_hand_computed():
    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.nn.functional.one_hot(x.long().squeeze(1), 3).float()

    x = torch.tensor([[0.0], [1.0], [2.0], [1.0]])
    y = torch.tensor([0, 1, 1, 1])
    assert evaluate(Fixed(), DataLoader(TensorDataset(x, y), batch_size=3)) == 0.75


@pytest.mark.parametrize(
    "kwargs, word",
    [({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr"), ({"optimizer": "lion"}, "optimizer"),
     ({"weight_decay": -0.1}, "weight_decay"), ({"momentum": 1.0}, "momentum")],
)
def test_train_config_rejects_bad_values(kwargs, word):
    with pytest.raises(ValueError, match=word):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                       ("sgd", torch.optim.SGD)])
def test_make_optimizer(name, cls):
    opt = make_optimizer(torch.nn.Linear(2, 2).parameters(), TrainConfig(optimizer=name, lr=0.5))
    assert isinstance(opt, cls) and opt.param_groups[0]["lr"] == 0.5


def test_empty_loaders_are_clear_errors():
    empty = DataLoader(TensorDataset(torch.zeros(0, 64), torch.zeros(0, dtype=torch.long)))
    with pytest.raises(ValueError, match="loader"):
        evaluate(MLP(), empty)
    with pytest.raises(ValueError, match="loader"):
        train(MLP(), empty, TrainConfig(epochs=1, progress=False))


def test_train_uses_a_custom_step_and_records_its_loss():
    splits = digits_loaders(batch_size=500, seed=0, flatten=True)
    model = MLP()
    calls = []

    def step(x, y):
        calls.append(len(y))
        return 2.0, torch.nn.functional.one_hot(y, 10).float()  # "perfect" logits

    history = train(model, splits.train, TrainConfig(epochs=2, progress=False), step=step)
    assert sum(calls) == 2 * len(splits.train.dataset)
    assert history.loss == [2.0, 2.0] and history.train_accuracy == [1.0, 1.0]
