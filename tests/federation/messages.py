"""What the in-process strategy tests share: the part of flwr's Grid a strategy's
``configure_*`` uses, a node's train reply as a real Flower Message, and the task identity
Flower sets in a run (Messages take their run id from it)."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from federation.normalisation import NormStats
from federation.strategies import NORM_KEY, norm_to_config


class NodeGrid:
    """The part of flwr's Grid a strategy's configure_* uses: the node ids."""

    def __init__(self, nodes):
        self.nodes = nodes

    def get_node_ids(self):
        return list(self.nodes)


@pytest.fixture(autouse=True)
def task_identity():
    """Messages take their run id from the process's task identity (set by Flower in a run)."""
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 1
    yield


def train_reply(instruction, weights, steps, node, norm=None, **metrics):
    """A node's reply to ``instruction``: its weights, ``steps`` as num-examples, metrics and
    its normalisation statistics (default: a tiny fixed set)."""
    content = RecordDict(
        {
            "arrays": ArrayRecord(weights),
            "metrics": MetricRecord({"num-examples": steps, **metrics}),
            NORM_KEY: ConfigRecord(
                {
                    **norm_to_config(norm or NormStats(np.ones(2), np.ones(2), 10.0)),
                    "node-name": node,
                }
            ),
        }
    )
    return Message(content=content, reply_to=instruction)
