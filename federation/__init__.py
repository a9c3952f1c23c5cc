"""Flower federated training of policies across edge nodes whose twins differ
(a ServerApp and ClientApp on the Message API; a later issue fills this package)."""
