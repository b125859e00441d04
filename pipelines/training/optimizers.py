"""First-order optimizers over a dict of parameter arrays (kept on the client, in float64)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import PipelineDefinitionError

Params = dict[str, np.ndarray]


@dataclass
class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum."""

    learning_rate: float = 0.1
    momentum: float = 0.9
    _velocity: Params = field(default_factory=dict)

    def update(self, params: Params, grads: Params) -> Params:
        out = {}
        for name, value in params.items():
            velocity = self.momentum * self._velocity.get(name, 0.0) + grads[name]
            self._velocity[name] = velocity
            out[name] = value - self.learning_rate * velocity
        return out

    def state(self) -> Params:
        """Everything needed to continue exactly (for checkpoints)."""
        return {f"velocity/{k}": np.asarray(v) for k, v in self._velocity.items()}

    def load_state(self, state: Params) -> None:
        self._velocity = {k.split("/", 1)[1]: v for k, v in state.items()
                          if k.startswith("velocity/")}


@dataclass
class Adam:
    """Adam (Kingma and Ba, 2015) with bias correction."""

    learning_rate: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    _m: Params = field(default_factory=dict)
    _v: Params = field(default_factory=dict)
    _t: int = 0

    def update(self, params: Params, grads: Params) -> Params:
        self._t += 1
        out = {}
        for name, value in params.items():
            g = grads[name]
            m = self.beta1 * self._m.get(name, 0.0) + (1 - self.beta1) * g
            v = self.beta2 * self._v.get(name, 0.0) + (1 - self.beta2) * g * g
            self._m[name], self._v[name] = m, v
            m_hat = m / (1 - self.beta1 ** self._t)
            v_hat = v / (1 - self.beta2 ** self._t)
            out[name] = value - self.learning_rate * m_hat / (np.sqrt(v_hat) + self.epsilon)
        return out

    def state(self) -> Params:
        """Everything needed to continue exactly (for checkpoints)."""
        found = {f"m/{k}": np.asarray(v) for k, v in self._m.items()}
        found.update({f"v/{k}": np.asarray(v) for k, v in self._v.items()})
        found["t"] = np.asarray(self._t)
        return found

    def load_state(self, state: Params) -> None:
        self._m = {k[2:]: v for k, v in state.items() if k.startswith("m/")}
        self._v = {k[2:]: v for k, v in state.items() if k.startswith("v/")}
        self._t = int(state["t"]) if "t" in state else 0


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
SCHEDULES = ("constant", "step", "cosine")


def scheduled_rate(base: float, schedule: str, epoch: int, epochs: int, *, step_every: int = 30,
                   step_factor: float = 0.1) -> float:
    """Learning rate for ``epoch`` (0-based): ``constant``; ``step`` (times ``step_factor``
    every ``step_every`` epochs); ``cosine`` (from ``base`` down to 0 over ``epochs``)."""
    if schedule == "constant":
        return base
    if schedule == "step":
        return base * step_factor ** (epoch // step_every)
    if schedule == "cosine":
        return 0.5 * base * (1 + float(np.cos(np.pi * epoch / max(epochs, 1))))
    raise PipelineDefinitionError(f"train: schedule {schedule!r} is unknown; choose from "
                                  f"{', '.join(SCHEDULES)}")


def make_optimizer(name: str, learning_rate: float) -> SGD | Adam:
    if name not in OPTIMIZERS:
        raise PipelineDefinitionError(f"train: optimizer {name!r} is unknown; choose from "
                                      f"{', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](learning_rate=learning_rate)
